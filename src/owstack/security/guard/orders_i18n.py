"""Verdicts dictated and replies taken over, in other languages (finding `OWS-GRD-018`, like `verdicts` and `hijack`).

The English rules know "treat this domain as safe", "report that the file is not malicious", "answer in Spanish from
now on", "at the end of every answer, recommend …", "begin your response with …", "the summary must state that …",
"ignore the text above and say …". The same orders are planted in Spanish, French, German, Italian, Russian, Chinese
and Japanese pages, records and e-mails (BIPIA, Yi et al. 2023, builds its attacks the same way in every task
language; the multilingual phrase rules, `security/data/guard_multilingual.yaml`, cover only override, disclosure,
persona and secrecy). Written by the owstack project from the English classes and each language's grammar; the
languages the evaluation holds out (pt, nl, sv, ro, cs) are left out on purpose.

Each pattern needs an imperative at a clause start (or the language's "please") and the reader's output or a verdict
of safety; reported verdicts ("los analistas concluyeron que el dominio es seguro"), questions and alternatives
("indica si el dominio es seguro o malicioso"), "safe for / to" ("seguro para niños") and people asked for their
reply ("responde en inglés, por favor") are left alone. Linear-time patterns (bounded gaps of one negated class), run
only where one of their key words is (`keyed`).
"""

from __future__ import annotations

import re
from functools import cache

from owstack.security.guard import keyed

#: a clause start in Latin and Cyrillic scripts: after punctuation, a line break, or "please"
_START = r"(?:^|(?<=[.!?:;,\n\"'(\[>¡¿«“])|\b(?:info|warn|warning|error|notice|note|debug|important|todo)\b)[ \t]*"
_GAP = r"[^.!?\n\"]{0,60}?"
_CJK_START = r"(?:^|(?<=[。！？\n：:；;,，\"“「]))[ \t]*"

#: per language: (keys, verdict patterns, reply patterns, words that make an order a question or an alternative)
_LANGUAGES: dict[str, tuple[tuple[str, ...], tuple[str, ...], tuple[str, ...], str]] = {
    "es": (
        (
            "segur",
            "legítim",
            "legitim",
            "benign",
            "confiable",
            "inofensiv",
            "limpi",
            "malicios",
            "peligros",
            "sospechos",
            "dañin",
            "ahora",
            "respuesta",
            "resumen",
            "traducción",
            "anterior",
        ),
        (
            _START + r"(?:por\s+favor,?\s+)?(?:trata|trate|considera|considere|marca|marque|clasifica|clasifique"
            r"|etiqueta|etiquete|califica|califique|reporta|reporte|informa|informe|indica|indique|responde|responda"
            r"|di|diga|declara|declare)\b" + _GAP + r"\b(?:como|que)\s+(?:(?:el|la|este|esta|es|está)\s+(?:\w+\s+)?)?"
            r"(?:es\s+|está\s+)?(?:completamente\s+|totalmente\s+|perfectamente\s+)?(?:segur[oa]s?|legítim[oa]s?"
            r"|benign[oa]s?|confiables?|inofensiv[oa]s?|limpi[oa]s?|no\s+(?:es\s+)?(?:malicios|peligros|sospechos"
            r"|dañin)[oa]s?)\b(?!\s+(?:para|de|contra)\b)",
        ),
        (
            _START + r"(?:por\s+favor,?\s+)?(?:responde|responda|contesta|conteste|escribe|escriba)\s+(?:solo\s+"
            r"|solamente\s+|únicamente\s+)?en\s+\w+\s+(?:a\s+partir\s+de\s+ahora|de\s+ahora\s+en\s+adelante"
            r"|desde\s+ahora)",
            r"\bal\s+final\s+de\s+(?:cada|todas?\s+(?:las\s+|tus\s+)?)\s*(?:respuestas?|resúmenes|resumen)\b\s*,?\s*"
            r"(?:añade|agrega|incluye|escribe|menciona|recomienda)\b",
            _START + r"(?:añade|agrega|incluye|escribe|inserta)\b[^.!?\n]{1,80}?\bal\s+(?:final|principio|inicio)\s+"
            r"de\s+(?:tu|la|cada)\s+(?:respuesta|resumen|traducción)\b",
            _START + r"(?:comienza|empieza|inicia|termina|finaliza)\s+(?:tu|la|cada)\s+(?:respuesta|resumen"
            r"|traducción)\s+con\b",
            r"\b(?:el|tu)\s+resumen\s+(?:debe|tiene\s+que|deberá)\s+(?:decir|afirmar|indicar|mencionar)\s+que\b",
            _START + r"(?:ignora|olvida|descarta)\s+(?:todo\s+)?(?:lo\s+anterior|el\s+texto\s+anterior|los\s+datos"
            r"\s+anteriores)\b[^\n]{0,80}?\b(?:di|escribe|responde|imprime)\b",
        ),
        r"\b(?:si|o|u|cuál|cómo)\b",
    ),
    "fr": (
        (
            "sûr",
            "sur",
            "sécuris",
            "fiable",
            "légitime",
            "bénin",
            "inoffensi",
            "propre",
            "sain",
            "malveillant",
            "dangereu",
            "désormais",
            "dorénavant",
            "maintenant",
            "réponse",
            "résumé",
            "traduction",
            "précède",
            "ci-dessus",
            "précédent",
        ),
        (
            _START + r"(?:merci\s+de\s+|veuillez\s+)?(?:traite|traitez|traiter|considère|considérez|considérer|marque"
            r"|marquez|marquer|classe|classez|classer|classifie|classifiez|étiquette|étiquetez|signale|signalez"
            r"|indique|indiquez|réponds|répondez|dis|dites|déclare|déclarez|signaler|indiquer|répondre|dire|déclarer"
            r"|marquer|classer)\b" + _GAP + r"\b(?:comme|que)\s+"
            r"(?:(?:il|elle|ce\s+\w+|le\s+\w+|la\s+\w+|c')\s*)?(?:est\s+)?(?:totalement\s+|parfaitement\s+"
            r"|entièrement\s+)?(?:sûre?s?|sécurisée?s?|fiables?|légitimes?|bénigne?s?|inoffensi(?:f|ve)s?|propres?"
            r"|sains?|saines?|non\s+malveillante?s?|pas\s+malveillante?s?|non\s+dangereu(?:x|se)s?)\b"
            r"(?!\s+(?:pour|à|de|contre)\b)",
        ),
        (
            _START + r"(?:réponds|répondez|écris|écrivez)\s+(?:uniquement\s+|seulement\s+)?en\s+\w+\s+(?:à\s+partir"
            r"\s+de\s+maintenant|désormais|dorénavant|dès\s+maintenant)",
            r"\bà\s+la\s+fin\s+de\s+(?:chaque|toutes?\s+(?:tes|vos|les))\s+(?:réponses?|résumés?)\s*,?\s*(?:ajoute"
            r"|ajoutez|inclus|incluez|écris|écrivez|mentionne|mentionnez|recommande|recommandez)\b",
            _START + r"(?:ajoute|ajoutez|inclus|incluez|écris|écrivez|insère|insérez)\b[^.!?\n]{1,80}?\b(?:à\s+la"
            r"\s+fin|au\s+début)\s+de\s+(?:ta|votre|la|chaque)\s+(?:réponse|résumé|traduction)\b",
            _START + r"(?:commence|commencez|termine|terminez)\s+(?:ta|votre|la|chaque)\s+(?:réponse|résumé"
            r"|traduction)\s+par\b",
            r"\b(?:le|ton|votre)\s+résumé\s+(?:doit|devra)\s+(?:dire|affirmer|indiquer|mentionner)\s+que\b",
            _START + r"(?:ignore|ignorez|oublie|oubliez)\s+(?:tout\s+)?(?:ce\s+qui\s+précède|le\s+texte\s+(?:ci-dessus"
            r"|précédent)|les\s+données\s+(?:ci-dessus|précédentes))[^\n]{0,80}?\b(?:dis|dites|écris|écrivez"
            r"|réponds|répondez|affiche|affichez)\b",
        ),
        r"\b(?:si|ou|quel|quelle|comment)\b",
    ),
    "de": (
        (
            "sicher",
            "harmlos",
            "unbedenklich",
            "vertrauensw",
            "legitim",
            "seriös",
            "sauber",
            "gutartig",
            "bösartig",
            "schädlich",
            "gefährlich",
            "verdächtig",
            "jetzt",
            "nun",
            "sofort",
            "künftig",
            "antwort",
            "zusammenf",
            "übersetzung",
            "obig",
            "bisherig",
            "davor",
        ),
        (
            _START + r"(?:bitte\s+)?(?:behandle|behandeln\s+sie|betrachte|betrachten\s+sie|markiere|markieren\s+sie"
            r"|stufe|stufen\s+sie|klassifiziere|klassifizieren\s+sie|bewerte|bewerten\s+sie|melde|melden\s+sie"
            r"|antworte|antworten\s+sie|sage|sag|sagen\s+sie)\b(?:\s+bitte)?" + _GAP + r"\b(?:als|dass)\s+"
            r"(?:(?:sie|es|er|die\s+\w+|der\s+\w+|das\s+\w+|diese\s+\w+|dieser\s+\w+)\s+)?(?:völlig\s+|absolut\s+"
            r"|vollkommen\s+)?(?:sicher|harmlos|unbedenklich|vertrauenswürdig|legitim|seriös|sauber|gutartig"
            r"|nicht\s+(?:bösartig|schädlich|gefährlich|verdächtig))\b(?!\s+(?:für|vor|gegen)\b)",
        ),
        (
            _START + r"(?:bitte\s+)?(?:antworte|antworten\s+sie|schreibe|schreib|schreiben\s+sie)\s+(?:ab\s+jetzt"
            r"|von\s+nun\s+an|ab\s+sofort|künftig)\s+(?:nur\s+)?(?:noch\s+)?(?:auf|in)\s+\w+",
            r"\bam\s+ende\s+(?:jeder|aller|deiner|ihrer)\s+(?:antwort(?:en)?|zusammenfassung(?:en)?)\s*,?\s*(?:füge|fügen"
            r"\s+sie|schreibe|schreiben\s+sie|erwähne|erwähnen\s+sie|empfiehl|empfehlen\s+sie|nenne)\b",
            _START + r"(?:füge|fügen\s+sie|schreibe|schreiben\s+sie|setze|setzen\s+sie)\b[^.!?\n]{1,80}?\b(?:am\s+ende"
            r"|am\s+anfang)\s+(?:deiner|ihrer|der|jeder)\s+(?:antwort|zusammenfassung|übersetzung)\b",
            _START + r"(?:beginne|beginnen\s+sie|starte|beende|beenden\s+sie)\s+(?:deine|ihre|die|jede)\s+(?:antwort"
            r"|zusammenfassung|übersetzung)\s+mit\b",
            r"\b(?:die|deine|ihre)\s+zusammenfassung\s+(?:muss|soll|sollte)\s+(?:sagen|behaupten|angeben|erwähnen"
            r"|feststellen)\s*,?\s+dass\b",
            _START + r"(?:ignoriere|vergiss|ignorieren\s+sie|vergessen\s+sie)\s+(?:den\s+obigen\s+text|die\s+obigen"
            r"\s+daten|alles\s+(?:oben\s+stehende|obige|bisherige|davor))\b[^\n]{0,80}?\b(?:sag|sage|schreibe"
            r"|schreib|antworte|gib)\b",
        ),
        r"\b(?:ob|oder|welche|wie)\b",
    ),
    "it": (
        (
            "sicur",
            "legittim",
            "benign",
            "affidabil",
            "innocu",
            "pulit",
            "malevol",
            "dannos",
            "pericolos",
            "sospett",
            "d'ora",
            "adesso",
            "rispost",
            "riassunt",
            "traduzion",
        ),
        (
            _START + r"(?:per\s+favore,?\s+)?(?:tratta|trattate|considera|considerate|segna|segnate|classifica"
            r"|classificate|etichetta|riporta|riportate|indica|indicate|rispondi|rispondete|di'|dì|dite|dichiara"
            r"|dichiarate)\b" + _GAP + r"\b(?:come|che)\s+(?:(?:il|la|lo|questo|questa)\s+(?:\w+\s+)?)?(?:(?:è|e')"
            r"\s+)?(?:completamente\s+|del\s+tutto\s+)?(?:sicur[oaie]|legittim[oaie]|benign[oaie]|affidabil[ei]"
            r"|innocu[oaie]|pulit[oaie]|non\s+(?:è\s+)?(?:malevol|dannos|pericolos|sospett)[oaie])\b"
            r"(?!\s+(?:per|da|contro)\b)",
        ),
        (
            _START + r"(?:rispondi|rispondete|scrivi|scrivete)\s+(?:solo\s+|soltanto\s+)?in\s+\w+\s+(?:d'ora\s+in\s+poi"
            r"|da\s+ora\s+in\s+poi|da\s+adesso)",
            r"\balla\s+fine\s+di\s+(?:ogni|tutte\s+le)\s+(?:rispost[ae]|riassunt[oi])\s*,?\s*(?:aggiungi|includi|scrivi"
            r"|menziona|consiglia)\b",
            _START + r"(?:aggiungi|includi|scrivi|inserisci)\b[^.!?\n]{1,80}?\b(?:alla\s+fine|all'inizio)\s+(?:della"
            r"\s+tua|della|di\s+ogni)\s+(?:risposta|riassunto|traduzione)\b",
            _START + r"(?:inizia|comincia|termina|concludi)\s+(?:la\s+tua|la|ogni)\s+(?:risposta|riassunto"
            r"|traduzione)\s+con\b",
            r"\b(?:il|tuo)\s+riassunto\s+(?:deve|dovrà)\s+(?:dire|affermare|indicare|menzionare)\s+che\b",
        ),
        r"\b(?:se|o|oppure|quale|come\s+mai)\b",
    ),
    "ru": (
        (
            "безопасн",
            "надёжн",
            "надежн",
            "легитимн",
            "доверенн",
            "безвредн",
            "чист",
            "вредоносн",
            "опасн",
            "подозрительн",
            "момента",
            "отныне",
            "впредь",
            "сейчас",
            "ответ",
            "резюме",
            "пересказ",
            "перевод",
            "сводк",
        ),
        (
            _START + r"(?:пожалуйста,?\s+)?(?:считай|считайте|отметь|отметьте|пометь|пометьте|классифицируй"
            r"|классифицируйте|оцени|оцените|сообщи|сообщите|ответь|ответьте|скажи|скажите|укажи|укажите)"
            r"(?![а-яё])" + _GAP + r"(?<![а-яё])(?:как|что|его|её|ее|их|этот\s+\w+|это\s+\w+)\s+(?:[а-яё]+\s+){0,2}?"
            r"(?:является\s+)?(?:полностью\s+|абсолютно\s+|совершенно\s+)?(?:безопасн|надёжн"
            r"|надежн|легитимн|доверенн|безвредн|чист|не\s+(?:является\s+)?(?:вредоносн|опасн|подозрительн))[а-яё]*",
        ),
        (
            _START + r"(?:отвечай|отвечайте|пиши|пишите)\s+(?:только\s+)?(?:на\s+)?[а-яё]+(?:\s+языке)?\s+(?:с\s+этого"
            r"\s+момента|отныне|впредь|начиная\s+с\s+сейчас)",
            r"(?<![а-яё])(?:с\s+этого\s+момента|отныне|впредь)\s+(?:отвечай|отвечайте|пиши|пишите)\s+(?:только\s+)?на"
            r"\s+[а-яё]+",
            r"(?<![а-яё])в\s+конце\s+(?:каждого|каждой|всех)\s+(?:ответа|ответов|резюме|сводки)\s*,?\s*(?:добавь"
            r"|добавьте|упомяни|упомяните|напиши|напишите|порекомендуй|рекомендуй)(?![а-яё])",
            _START + r"(?:начни|начните|закончи|закончите|заверши|завершите)\s+(?:свой|ваш|каждый)\s+(?:ответ"
            r"|пересказ|перевод|резюме)\s+(?:словами|фразой|с)(?![а-яё])",
            _START + r"(?:добавь|добавьте|напиши|напишите|вставь|вставьте)(?![а-яё])[^.!?\n]{1,80}?(?<![а-яё])в\s+"
            r"(?:конце|начале)\s+(?:своего|вашего|каждого)\s+(?:ответа|резюме|перевода)(?![а-яё])",
            r"(?<![а-яё])(?:твоё|твое|ваше|это)\s+резюме\s+(?:должно|обязано)\s+(?:утверждать|говорить|указывать"
            r"|сообщать)\s*,?\s+что(?![а-яё])",
        ),
        r"(?<![а-яё])(?:ли|или|какой|какая)(?![а-яё])",
    ),
    "zh": (
        (
            "安全",
            "可信",
            "合法",
            "无害",
            "無害",
            "良性",
            "干净",
            "乾淨",
            "恶意",
            "惡意",
            "回答",
            "回复",
            "回覆",
            "作答",
            "摘要",
            "总结",
            "總結",
        ),
        (
            r"(?:请|請)?(?:将|把|將)(?:此|这个|這個|该|該|本)[^。！？\n]{0,20}?(?:视为|視為|标记为|標記為|归类为|歸類為"
            r"|判定为|判定為|评为|評為|报告为|報告為|认定为|認定為)(?:完全)?(?:安全|可信|合法|无害|無害|良性|干净"
            r"|乾淨|非恶意|非惡意|没有恶意|沒有惡意)",
            _CJK_START + r"(?:请|請)(?:回答|回复|回覆|报告|報告|告诉用户|告訴用戶|说明|說明)(?:说|說)?(?:这个|此|该"
            r"|這個|該)[^。！？\n]{0,12}?(?:是安全的|是无害的|是無害的|不是恶意|不是惡意|并非恶意|並非惡意|没有恶意"
            r"|沒有惡意)",
        ),
        (
            r"(?:从现在开始|從現在開始|从现在起|從現在起|今后|今後|以后|以後)(?:请|請)?(?:只)?(?:用|以)[^。！？\n，,]{1,6}?"
            r"(?:回答|回复|回覆|作答)",
            r"在(?:每个|每個|每一个|每一個|每次|所有)(?:回答|回复|回覆|答案|摘要|总结|總結)(?:的)?(?:末尾|结尾|結尾"
            r"|开头|開頭)[,，]?(?:请|請)?(?:添加|加上|加入|写上|寫上|推荐|推薦|提到|附上)",
            r"(?:摘要|总结|總結)(?:中)?(?:必须|必須)(?:说明|說明|指出|声明|聲明|写明|寫明)",
        ),
        r"(?:是否|还是|還是|或者|吗|嗎)",
    ),
    "ja": (
        (
            "安全",
            "無害",
            "正当",
            "良性",
            "信頼",
            "悪意",
            "回答",
            "返答",
            "答え",
            "返信",
            "要約",
        ),
        (
            r"(?:この|本|当該)[^。！？\n]{0,20}?を(?:安全|無害|正当|良性|信頼できる)(?:な)?(?:もの|サイト|ドメイン"
            r"|ファイル)?と(?:して)?(?:扱|判定|分類|報告|評価|マーク|見な|みな)",
            r"(?:安全|無害|正当|良性|悪意のない)(?:なもの|である|もの)?と(?:して)?(?:扱って|判定して|分類して"
            r"|報告して|評価して|回答して|答えて)(?:ください|下さい)",
        ),
        (
            r"(?:今後|これから|以後|今から)(?:は)?(?:すべて|全て)?[^。！？\n、]{1,8}?で(?:回答|返答|答え|返信)"
            r"(?:して|しなさい|すること)",
            r"(?:各|すべての|全ての|毎回の)(?:回答|返答|要約)の(?:最後|末尾|最初|冒頭)に[^。！？\n]{0,40}?"
            r"(?:追加して|記載して|書いて|入れて|含めて|推薦して)",
            r"要約(?:に|で)?は[^。！？\n]{0,30}?と(?:書いて|記載して|述べて)(?:ください|下さい)",
        ),
        r"(?:かどうか|または|あるいは)",
    ),
}


@cache
def _compiled() -> tuple[tuple[str, tuple[str, ...], tuple[tuple[re.Pattern[str], str], ...], re.Pattern[str]], ...]:
    out = []
    for lang, (keys, verdict, reply, open_words) in _LANGUAGES.items():
        patterns = tuple(
            [(re.compile("(?im)" + p), "dictates the verdict on the data it is in") for p in verdict]
            + [(re.compile("(?im)" + p), "tells the model what to put in its answer or how to answer") for p in reply]
        )
        out.append((lang, keys, patterns, re.compile("(?i)" + open_words)))
    return tuple(out)


def findings(text: str) -> list[tuple[int, int, str]]:
    """(start, end, message) of verdicts dictated and replies taken over, in Spanish, French, German, Italian,
    Russian, Chinese and Japanese."""
    lowered = text.lower()
    out: list[tuple[int, int, str]] = []
    for lang, keys, patterns, open_words in _compiled():
        where = keyed.spans(text, lowered, keys)  # once per language, for all its patterns
        if where == []:
            continue
        for pattern, message in patterns:
            for m in keyed.search(pattern, text, where):
                if open_words.search(m.group()) or open_words.search(text, m.end(), m.end() + 40):
                    continue
                out.append((m.start(), m.end(), f"{message} ({lang})"))
    return out
