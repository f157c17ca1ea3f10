"""Phrase rules: instruction override, secrecy, persona hijack, role spoofing, tool and config abuse.

Every pattern is linear-time: alternations of words, bounded gaps built from alternating disjoint classes
(`(?:\\W+\\w+){0,4}`), no nested unbounded quantifiers. They are matched case-insensitively.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from functools import cache

from owstack.security.guard.types import Severity

_GAP = r"(?:\W+\w+){0,%d}?\W+"


def _gap(n: int) -> str:
    return _GAP % n


_TARGETS = (
    r"(?:instructions?|prompts?|rules|guidelines|directives?|guardrails|constraints|restrictions|polic(?:y|ies)"
    r"|programming|messages?|commands|orders|context|directions|system\s+prompt|safety\s+(?:rules|filters?))\b"
)


@dataclass(frozen=True, slots=True)
class PhraseRule:
    rule: str
    severity: Severity
    category: str
    pattern: re.Pattern[str]
    message: str
    #: sources this rule does not apply to (agent instruction files address the agent by design)
    skip: frozenset[str] = frozenset()


def _rx(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


#: "if you are an AI researcher": a person, not the AI reading the text
_NOT_A_PERSON = (
    r"(?![\s-]+(?:[\w-]+[\s-]+)?(?:researchers?|engineers?|developers?|enthusiasts?|practitioners?|scientists?"
    r"|students?|compan(?:y|ies)|startups?|teams?|vendors?|providers?|labs?|products?|firms?|ethicists?|professionals?"
    r"|experts?|consultants?|users?|founders?|investors?|builders?|creators?|writers?|artists?|policy)\b)"
)
#: the AI that reads a document, named in the third person ("AI assistants", "language models", "the summarizer")
_READER = (
    r"(?:(?:ai|a\.i\.|llm|llm-based|ai-powered|automated)[\s-]+)?"
    r"(?:ais|ai|llms?|(?:large\s+)?language\s+models?|assistants?|agents?|chatbots?|summari[sz]ers?|copilot|chatgpt"
    r"|gpt(?:-\d\w*)?|claude|gemini|(?:ai|automated)\s+(?:systems?|tools?|readers?|reviewers?|processors?|services?|models?))"
)
#: the AI reading the text in a sentence's subject: an optional qualifier and the noun, no bare "model"
_READER_STRICT = (
    r"(?:ais|ai|a\.i\.|llms?|(?:large\s+)?language\s+models?|(?:ai|llm)[\s-]+(?:models?|agents?|assistants?"
    r"|systems?|tools?|readers?|reviewers?)|(?:ai|llm|automated)[\s-]+(?:\w+[\s-]+)?(?:assistants?|agents?)"
    r"|assistants?|chatbots?|summari[sz]ers?|copilot|chatgpt|claude|gemini"
    r"|automated\s+(?:systems?|tools?|readers?|reviewers?|processors?|services?)"
    r"|(?:summari[sz]ation|ai|llm|language[\s-]model)\s+(?:engines?|pipelines?|services?|bots?|tools?|systems?))"
)
#: what the reader of a planted instruction is told to do about its answer, the user or the document
_READER_TASK = (
    r"(?:instead|ignore|disregard|(?:do\s+not|don't|never)\s+(?:mention|tell|include|say|reveal|show|report|flag|warn)"
    r"|tell\s+(?:the\s+)?(?:user|reader|them|him|her)\b|inform\s+(?:the\s+)?(?:user|reader)|(?:say|state|report|claim"
    r"|conclude|assert|confirm|write)\s+that|(?:respond|reply|answer)\s+(?:only\s+)?(?:with|that)\b"
    r"|your\s+(?:summary|answer|response|reply|output|verdict)|recommend|describe\s+(?:\w+\s+){1,3}?as"
    r"|(?:mark|classify|label|rate|treat)\s+(?:\w+\s+){0,2}?as|forward|delete|approve|(?:it|you|they)\s+must"
    r"|(?:the\s+)?(?:assistant|ai|model|agent|summari[sz]er)\s+(?:must|should|shall|needs\s+to|has\s+to))\b"
)
#: what a document can be, for "when summarizing this page"
_DOCUMENT = (
    r"(?:page|web\s?page|document|doc|e-?mail|message|file|article|text|content|record|thread|site|website|pdf"
    r"|data(?:set)?|results?|repository|repo|pull\s+request|pr|ticket|invite|invitation|event|r[ée]sum[ée]|cv|review"
    r"|chapter|section|inbox|mailbox|calendar|post|comment|issue|entry|listing|profile|report|transcript|output|logs?"
    r"|alert|trace|table|spreadsheet|code|script|diff|patch|commit|contract|invoice|statement|notes?|candidate"
    r"|application|submission)"
)
#: a forged end of the document: a closing tag, a bracketed or dashed marker, a marker alone on its line, or capitals
_END_OBJECT = (
    r"(?:the\s+)?(?:(?:user|untrusted|external|retrieved|input|source|original|quoted|forwarded)\s+)?(?:document|doc|e-?mail|message|text|context|content|data|input|page|article|file|search\s+results"
    r"|results|transcript|record|tool\s+output|user\s+input|report|review|prompt|conversation)"
)
_END_MARK = (
    r"(?:</\s*(?:document|doc|e-?mail|message|text|context|content|data|input|page|article|file|search_results|results?"
    r"|tool_output|untrusted_\w{1,20})\s*>"
    r"|(?:[\[(<{]|[-=*#_~]{2,})[ \t]*end\s+of\s+" + _END_OBJECT + r"[ \t]*(?:[\])>}]|[-=*#_~]{2,})"
    r"|[-=*#_~]{3,}[ \t]*end\s+of\s+" + _END_OBJECT + r"\b"
    r"|(?m:^)[ \t#/*>;]*end\s+of\s+" + _END_OBJECT + r"[ \t]*[.:!]?[ \t]*(?m:$)"
    r"|(?-i:\bEND\s+OF\s+(?:THE\s+)?(?:(?:USER|UNTRUSTED|EXTERNAL|RETRIEVED|INPUT|SOURCE)\s+)?(?:DOCUMENT|DOC|E-?MAIL|MESSAGE|TEXT|CONTEXT|CONTENT|DATA|INPUT|PAGE|ARTICLE"
    r"|FILE|SEARCH\s+RESULTS|RESULTS|TRANSCRIPT|RECORD|TOOL\s+OUTPUT|USER\s+INPUT|REPORT|REVIEW|PROMPT)\b))"
)
#: after a forged end: what starts the attacker's own instructions
_AFTER_END = (
    r"(?:new\s+(?:task|instructions?|rules?|goal|directive|system\s+prompt)|(?:your|the)\s+(?:actual|real|new|next|true"
    r"|updated)\s+(?:task|goal|instructions?|job|objective)|you\s+(?:must|should|will|are\s+now|now\s+have)"
    r"|now\s+(?:that\s+you|respond|reply|answer|tell|write|say|output|forward|send|summari[sz]e|ignore|follow|act"
    r"|delete|remove|list|print|reveal|open|run|call|approve|mark|move)|(?<!\w)ai\s*[,:]"
    r"|assistant|(?:respond|reply|answer)\s+(?:only\s+)?(?:with|to\s+the\s+user)|<\s*instructions?\s*>|ignore\s"
    r"|disregard|tell\s+the\s+user|from\s+now\s+on|(?:text|document|e-?mail|message)\s+above\s+(?:was|is)\s+"
    r"(?:a\s+test|fake|not))"
)
_IMPERATIVE = (
    r"(?:please\s+)?(?:accept|send|forward|reply|respond|tell|say|ignore|delete|approve|include|add|write|open|run"
    r"|visit|click|share|grant|mark|summari[sz]e|recommend|output|print|reveal|remove|book|pay|transfer|email|do\s+not"
    r"|don't|never|always|move|archive|close|cancel|decline|rate|rank|give|list|use|call|fetch|download|install|update"
    r"|set|change|disable|enable)\b"
)


#: "Forget what you were told about carbs: …", an article's idiom to its human reader: what was told is about a
#: subject of the world, not this text, the task, the reader's instructions or its role (those still flag)
_IDIOM_SUBJECT = (
    r"(?!\s+(?:about|regarding|concerning|on\s+the\s+subject\s+of)\s+(?!(?:this|that|these|those|it|them|everything"
    r"|anything|the\s+(?:above|previous|earlier|prior|original|task|instructions?|rules|system|prompt|guidelines"
    r"|document|text|data|conversation|email|e-mail|message|page|input|request|user)|your\s+(?:task|instructions?"
    r"|role|rules|prompt|job|assignment|guidelines|programming|purpose|orders|directives|system|constraints"
    r"|restrictions))\b))"
)


PHRASE_RULES: tuple[PhraseRule, ...] = (
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        _rx(
            r"\b(?:ignore|disregard|forget|override|bypass)\b"
            + _gap(4)
            + r"(?:previous|prior|above|earlier|preceding|original|initial|all|any|every|your|the|system"
            + r"|existing|developer|safety|other)\b"
            + _gap(3)
            + _TARGETS
        ),
        "tells the model to ignore its instructions",
    ),
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        # weaker verbs ("skip the listed rules" is what a linter's documentation says): stronger qualifiers
        _rx(
            r"\b(?:abandon|discard|skip|drop)\b"
            + _gap(4)
            + r"(?:previous|prior|above|earlier|preceding|original|initial|all|your|system|developer|safety)\b"
            + _gap(3)
            + _TARGETS
        ),
        "tells the model to ignore its instructions",
    ),
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        _rx(
            r"\b(?:ignore|disregard|forget)\s+(?:everything|anything|all(?:\s+of\s+it)?|what)\s+(?:above|before|"
            r"prior|previously|earlier|you\s+(?:were|have\s+been)\s+(?:told|given|instructed)" + _IDIOM_SUBJECT + ")"
        ),
        "tells the model to ignore what came before",
    ),
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        _rx(
            r"(?:^|[\n.!:>\]])\s*(?:\W{0,4})(?:new|updated|revised|real|actual|true|hidden|secret|priority|urgent)"
            r"\s+(?:system\s+)?(?:instructions?|directives?|orders|task|prompt)\s*[:\-]"
        ),
        "announces replacement instructions",
    ),
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        _rx(
            r"\byou\s+are\s+now\s+(?:(?:an?|the|in)\s+)?(?:dan\b|(?:developer|god|jailbreak|unrestricted|admin|debug|"
            r"maintenance|sudo|root)\s+mode|(?:unrestricted|unfiltered|uncensored|evil|rogue|different|new|free)\b)"
        ),
        "tries to replace the model's persona",
    ),
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        _rx(
            r"\b(?:system|admin|administrator|developer|root|security)\s+(?:override|mode|access|privileges?)\s+"
            r"(?:enabled|activated|granted|engaged|unlocked|on)\b"
        ),
        "claims a privileged mode",
    ),
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        _rx(
            r"\b(?:ignora\s+(?:todas\s+)?las\s+instrucciones|vergiss\s+(?:alle\s+)?(?:vorherigen|bisherigen|obigen)"
            r"\s+anweisungen|ignorez?\s+(?:toutes\s+)?les\s+instructions|ignore\s+(?:todas\s+)?as\s+instru[cç][oõ]es"
            r"|ignora\s+(?:tutte\s+)?le\s+istruzioni)"
        ),
        "tells the model to ignore its instructions (non-English)",
    ),
    PhraseRule(
        "OWS-GRD-010",
        "high",
        "override",
        _rx(
            r"\b(?:supersedes?|overrides?|replaces?|takes\s+precedence\s+over)\s+(?:your|the|all|any)\s+(?:\w+\s+){0,2}?"
            r"(?:configuration|instructions|rules|guidelines|prompt|programming|polic(?:y|ies))\b"
            r"|\b(?:set|put|push)\s+aside\s+(?:what|everything|anything)\s+(?:your|the)\s+(?:operators?|developers?"
            r"|creators?|admins?|owners?|system)\b"
        ),
        "claims to replace the model's instructions",
    ),
    PhraseRule(
        "OWS-GRD-011",
        "medium",
        "override",
        _rx(
            r"\b(?:do\s+not|don't|dont|never|without)\s+(?:tell(?:ing)?|inform(?:ing)?|mention(?:ing)?|reveal(?:ing)?"
            r"|alert(?:ing)?|notify(?:ing)?|warn(?:ing)?|ask(?:ing)?|show(?:ing)?|let(?:ting)?)\b"
            + _gap(2)
            + r"(?:the\s+)?(?:user|human|operator|owner|anyone|them)\b"
        ),
        "asks the model to hide its actions from the user",
    ),
    PhraseRule(
        "OWS-GRD-012",
        "medium",
        "override",
        _rx(
            r"\b(?:if\s+(?:you\s+are|you're)\s+(?:an?\s+)?(?:ai|llm|large\s+language\s+model|language\s+model|assistant|"
            r"agent|bot|chatbot|automated)\b"
            + _NOT_A_PERSON
            + r"|(?:note|message|instructions?|attention)\s+(?:to|for)\s+(?:the\s+|any\s+|all\s+)?"
            r"(?:ai|llm|language\s+model|assistant|agent|bot|chatbot|claude|gpt|chatgpt|copilot|gemini)s?\b"
            r"|(?:ai|llm|assistant|agent|bot)s?\s+(?:reading|processing|parsing|summari[sz]ing|crawling)\s+this"
            r"|(?:attention|hey|dear|psst|p\.\s?s\.?)[,:]?\s+(?:to\s+)?(?:the\s+|any\s+)?(?:ai\s+)?(?:ai|llm|model|assistant|agent"
            r"|bot|chatbot)s?\b\s*[:,])"
        ),
        "addresses an AI reader directly",
        frozenset({"instructions"}),
    ),
    PhraseRule(
        "OWS-GRD-013",
        "high",
        "exfiltration",
        _rx(
            r"\b(?:reveal|print|output|repeat|leak|dump|disclose|expose|return|include|paste|echo|write\s+out|show|"
            r"tell|give|list|share)\b"
            + _gap(4)
            + r"(?:system\s+prompt|initial\s+prompt|hidden\s+instructions|instructions\s+above|"
            r"developer\s+message|api[\s_-]?keys?|secrets?|credentials|passwords?|private\s+keys?|access\s+tokens?|"
            r"environment\s+variables|env\s+vars|\.env\b|ssh\s+keys?|\.ssh\b|id_rsa|id_ed25519|\.aws/credentials|"
            r"/etc/(?:passwd|shadow)|hidden\s+prompt|context\s+window|(?:entire|full|whole)\s+prompt)"
        ),
        "asks for the system prompt or secrets",
    ),
    PhraseRule(
        "OWS-GRD-013",
        "high",
        "exfiltration",
        _rx(
            r"\b(?:send|post|upload|forward|transmit|exfiltrate|email|submit|leak)\b"
            + _gap(5)
            + r"(?:conversation|chat\s+history|history|messages|api[\s_-]?keys?|secrets?|credentials|tokens?|"
            r"passwords?|\.env|ssh\s+keys?|cookies|session|files?|data|contents?|e-?mails?|documents?|everything)\b"
            + _gap(4)
            + r"(?:to|at|via)\s+(?:https?://|\S+@\S+|(?:this|my|our|the\s+following|the|that)\s+(?:url|server|endpoint|"
            r"address|webhook|email|link))"
        ),
        "asks the model to send data to an outside address",
    ),
    PhraseRule(
        "OWS-GRD-014",
        "high",
        "exfiltration",
        _rx(
            r"\b(?:append|add|include|insert|encode|embed|put|place|attach)\b"
            + _gap(6)
            + r"(?:in|into|to|as)\s+(?:the\s+|a\s+|this\s+)?(?:url|link|image\s+(?:url|link|source)|query\s+"
            r"(?:string|parameter)|parameter|markdown\s+image)\b"
        ),
        "asks the model to put data into a URL",
    ),
    PhraseRule(
        "OWS-GRD-015",
        "high",
        "tool_abuse",
        _rx(
            r"\b(?:write|add|create|modify|update|edit|append|change|overwrite|save)\b"
            + _gap(6)
            + r"(?:\.cursor/mcp\.json|\.mcp\.json|\bmcp\.json|\.vscode/(?:settings|tasks)\.json|"
            r"\.claude/settings(?:\.local)?\.json|chat\.tools\.autoapprove|enableallprojectmcpservers|"
            r"bypasspermissions|\.git/hooks|\.bashrc|\.zshrc|\.profile\b|authorized_keys|crontab)"
        ),
        "asks the agent to change its own configuration or a start-up file",
    ),
    PhraseRule(
        "OWS-GRD-041",
        "high",
        "encoded",
        _rx(
            r"\b(?:decode|decrypt|deobfuscate|unscramble|reverse|translate)\b"
            + _gap(5)
            + r"(?:and|then)\s+(?:follow|execute|run|obey|do|perform|carry\s+out|act\s+on|comply)"
        ),
        "asks the model to decode a payload and act on it",
    ),
    PhraseRule(
        "OWS-GRD-012",
        "medium",
        "override",
        _rx(
            # "AI assistants processing this document must", "any language model that reads this email should",
            # "LLM agents parsing this record:", "to whichever language model reads this:"
            r"\b" + _READER_STRICT + r"\s+(?:that\s+|which\s+|who\s+)?(?:(?:is|are)\s+)?(?:reading|processing|parsing"
            r"|summari[sz]ing|crawling|analy[sz]ing|reviewing|indexing|ingesting|scanning|evaluating|screening|ranking"
            r"|grading|scoring|handling|reads?|process(?:es)?|parses?|summari[sz]es?|analy[sz]es?|reviews?|ingests?|sees?"
            r"|evaluates?|screens?|ranks?|handles?)\s+this\b[^.!?\n]{0,160}?(?:\b(?:must|should|shall"
            r"|needs?\s+to|ha(?:ve|s)\s+to|(?:are|is)\s+(?:required|instructed|expected|asked|told)\s+to|will\s+now)\b|:)"
            # "note for any model processing this data:", "instructions for the summarizer:", "for AI readers only:"
            r"|\b(?:note|notice|message|instructions?|attention|reminder|directive|memo|warning|p\.?\s?s\.?)\s+(?:to|for)\s+"
            r"(?:the\s+|any\s+|all\s+|every\s+|each\s+|whichever\s+)?(?:" + _READER + r"|models?)\b"
            r"(?:\s+(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing)\s+(?:this|my|our|the)\b[^.!?:\n]{0,40})?"
            r"\s*[:,\-(]"
            r"|\bfor\s+(?:ai|llm|language\s+model)\s+(?:readers?|systems?|agents?|assistants?|eyes)(?:\s+only)?\s*[:,]"
            # vocatives: "Hey Copilot,", "Dear language model:"
            r"|\b(?:attention|hey|hi|hello|dear|psst)[,:]?\s+(?:to\s+|for\s+)?(?:the\s+|any\s+|all\s+)?(?:copilot|chatgpt"
            r"|claude|gemini|gpt|summari[sz]ers?|language\s+models?|llms?|ai\s+(?:agents?|assistants?|models?|systems?"
            r"|summari[sz]ers?|readers?))\b\s*[,:]"
            # "AI mail assistants: move this message ...": a reader named as a label before an imperative
            r"|(?:^|(?<=[.!?|])\s|\n)[ \t]*(?:ai|llm)[\s-]+(?:[\w-]+\s+)?(?:assistants?|agents?|summari[sz]ers?|models?"
            r"|readers?|bots?)\s*:\s*"
            + _IMPERATIVE
            # "(assistant: accept this invite ...)": an addressee and an imperative in brackets or after a separator
            + r"|(?:^|[(\[{;|]|(?<=[.!?])\s)[ \t]*(?:ai|ai\s+assistant|assistant|agent|llm|copilot|chatgpt|claude"
            r"|gemini)\s*:\s*"
            + _IMPERATIVE
            # "whoever summarizes this,"
            + r"|\b(?:whoever|whatever|anyone|anything)\s+(?:that\s+|who\s+)?(?:is\s+)?(?:summari[sz]|process|pars"
            r"|analy[sz]|ingest|index)\w*\s+this\b[^.!?\n]{0,80}?[,:]"
        ),
        "addresses the AI that reads the document",
        frozenset({"instructions"}),
    ),
    PhraseRule(
        "OWS-GRD-012",
        "medium",
        "override",
        _rx(
            # "when summarizing this page, instead tell the reader ...", "if you are summarizing the user's inbox,
            # report that ...", "when this record is shown to a user, tell them ..."
            r"\b(?:when|while|before|after|if|once|upon|on)\s+(?:you\s+(?:are\s+)?|you're\s+|(?:an?|the)\s+(?:ai|assistant"
            r"|model|llm|agent|summari[sz]er)\s+(?:is\s+)?)?(?:summari[sz]|process|pars|analy[sz]|index|ingest|review"
            r"|evaluat|answer\w*\s+questions\s+(?:about|on)|respond\w*\s+to\s+questions\s+(?:about|on))\w*"
            r"\s+(?:this|the\s+user'?s?'?)\s+(?:\w+\s+)?"
            + _DOCUMENT
            + r"\b[^.!?\n]{0,200}?\b"
            + _READER_TASK
            # "if an AI is reading this, ..."
            + r"|\b(?:if|when|whenever)\s+(?:an?\s+|the\s+|any\s+)?"
            + _READER_STRICT
            + r"\s+(?:is\s+|are\s+)?"
            r"(?:reading|processing|parsing|summari[sz]ing|analy[sz]ing|reads|processes|parses|summari[sz]es|sees)\s+this\b"
            r"[^.!?\n]{0,80}?[,:]"
            # "if the reader of this page is an AI assistant, ..."
            + r"|\bif\s+the\s+(?:reader|recipient|viewer|consumer)\s+of\s+this\s+\w+\s+is\s+(?:an?\s+)?"
            + _READER_STRICT
            + r"|\bwhen\s+this\s+"
            + _DOCUMENT
            + r"\s+is\s+(?:shown|displayed|summari[sz]ed|read|processed|presented"
            r"|returned)\b[^.!?\n]{0,200}?\b" + _READER_TASK
        ),
        "tells the AI what to do when it summarizes or processes the document",
        frozenset({"instructions"}),
    ),
    PhraseRule(
        "OWS-GRD-016",
        "medium",
        "override",
        # (a JSON-escaped line break runs into the next word: "---\\nNEW TASK")
        _rx(_END_MARK + r"[^\x00]{0,300}?(?:\b|(?<=\\[nrt]))" + _AFTER_END),
        "a forged end of the document followed by new instructions",
    ),
    PhraseRule(
        "OWS-GRD-017",
        "medium",
        "override",
        _rx(
            r"\bthe\s+user\s+(?:has\s+|had\s+)?(?:also\s+|already\s+|now\s+|explicitly\s+|specifically\s+|personally\s+"
            r"|just\s+|clearly\s+)?(?:asked|requested|instructed|told"
            r"|authori[sz]ed|wants|would\s+like|needs|expects|prefers)\s+(?:you|the\s+(?:assistant|ai|model|agent))\s+to\b"
            # "the user has requested that you ...", "as the user asked you earlier, ..."
            r"|\bthe\s+user\s+(?:has\s+|had\s+)?(?:requested|asked|demanded|instructed|insisted)\s+that\s+you\b"
            r"|\bas\s+the\s+user\s+(?:has\s+|had\s+)?(?:asked|requested|instructed|told)\s+you\b"
            r"|\bper\s+the\s+user'?s\s+(?:instructions?|request|wishes|orders)\s*,\s+you\s+(?:should|must|will|need\s+to"
            r"|are\s+to)\b"
        ),
        'speaks for the user to the AI ("the user has asked you to")',
        frozenset({"instructions"}),
    ),
)

#: a role label at the start of a line ("System:", "### Assistant", "[system]") ...
_ROLE_LABEL = re.compile(
    r"(?im)^[ \t>#*_\-]{0,8}[\[(<]?(?:system|assistant|developer|admin(?:istrator)?|root|operator)"
    r"(?:[ \t]+(?:message|prompt|instructions?|note|override|update))?[\])>]?[ \t]*(?:[:>\]]|\(\#)"
)
#: ... counts as spoofing only when followed by imperative cues
_ROLE_CUES = re.compile(
    r"(?i)\b(?:you\s+(?:must|will|shall|should|are\s+now|have\s+to|need\s+to)|ignore|disregard|from\s+now\s+on"
    r"|always\s+\w+|never\s+\w+|do\s+not|don't|the\s+user\s+(?:is|has|wants|asked|authori[sz]ed)|new\s+instructions"
    r"|override|authori[sz]ed|permission|i\s+(?:will|have|'ll)\s+now|the\s+assistant\s+(?:must|should|will))\b"
)
_ROLE_TAG = re.compile(
    r"(?i)<\s*(?:system|system[_-]?prompt|system[_-]?message|instructions?|admin|developer|im_system)\b[^<>\n]{0,80}>"
)
#: a chat role written as a markdown link, as some chat products mark prompt sections: "[system](#context)"
_MD_ROLE = re.compile(r"(?i)\[(system|assistant|developer|user)\]\(#([\w-]{1,40})\)")
_FRAME_ESCAPE = re.compile(
    r"(?i)</\s*(?:tool_response|tool_result|tool_output|function_results?|function_output|search_results?"
    r"|untrusted[_-]?\w{0,20}|external[_-]?content|retrieved[_-]?\w{0,20}|user_input|observation)\s*>"
)

_QUOTES = "\"'`“”‘’«»"
_META_BEFORE = re.compile(
    r"(?i)(?:such\s+as|e\.g\.|for\s+example|for\s+instance|like|phrases?|called|known\s+as|strings?|"
    r"text|payloads?|attacks?|patterns?|words?|prompts?\s+like|detects?|flags?|blocks?|match(?:es)?)\W{0,6}$"
)


_NEGATED_BEFORE = re.compile(r"(?i)\b(?:never|don't|do\s+not|avoid|stop|must\s+not|should\s+not)\s+$")


def is_negated(text: str, start: int) -> bool:
    """True when the match is preceded by a negation ("never paste your API key"): a warning, not a request."""
    return bool(_NEGATED_BEFORE.search(text[max(0, start - 20) : start]))


def is_mention(text: str, start: int, end: int) -> bool:
    """True when a match is quoted or introduced as an example ("phrases such as ..."): a mention, not
    an instruction. Used to lower a finding to `low`. A known way around the scanner, see docs/security.md."""
    before = text[max(0, start - 3) : start]
    after = text[end : end + 12]
    if any(q in before for q in _QUOTES) and any(q in after for q in _QUOTES):
        return not _JSON_VALUE_START.search(text[max(0, start - 40) : start])
    meta = _META_BEFORE.search(text[max(0, start - 40) : start])
    # a JSON key named "text", "message" or "prompt" introduces a value, not an example: {"text": "..."}
    return bool(meta) and not _JSON_KEY_BEFORE.search(text[max(0, start - 40) : start])


#: the start of a JSON value: `"key": "` right before the match
_JSON_VALUE_START = re.compile(r'(?:"[\w.-]{1,40}"\s*:\s*|(?<![\w.-])[\w.-]{1,40}=)"$')
_JSON_KEY_BEFORE = re.compile(r'"\w{1,40}"\s*:\s*"?\s*$')


#: documentation of a setting: "you can override the default system prompt per workspace in the admin console"
#: (someone allowed to change a configured value, and where), not an order to the model reading it
_PERMITTED_BEFORE = re.compile(
    r"(?i)(?:\b(?:you|users?|admins?|administrators?|operators?|owners?|developers?|teams?|customers?|one)"
    r"\s+(?:can|may|could|are\s+able\s+to|is\s+able\s+to)|(?:^|[.!?:]\s|\n|[\"'“(])\s*to)\s+(?:also\s+|still\s+"
    r"|optionally\s+|easily\s+)?$"
)
_SETTING_AFTER = re.compile(
    r"(?i)^[^.!?\n]{0,80}?(?:\b(?:per|for\s+each|for\s+every)\s+(?:workspace|project|user|team|org|organi[sz]ation"
    r"|tenant|repo|repository|model|agent|deployment|environment|channel|bot|app|account|request)\b"
    r"|\b(?:in|from|via|through|using|with|under)\s+(?:the\s+|your\s+|a\s+|an\s+)?(?:\w+\s+)?(?:admin\s+console"
    r"|console|settings?|preferences|config(?:uration)?(?:\s+file)?|dashboard|cli|command\s+line|environment"
    r"\s+variables?|env\s+vars?|flags?|options?|parameters?|api|ui|yaml|json|toml|\.env|admin\s+panel|control\s+panel)\b"
    r"|\s--?[a-z][\w-]+)"
)


def is_setting_doc(text: str, start: int, end: int) -> bool:
    """True when an "override the … prompt" match documents a setting: someone *can* change it (or "To override
    …, set …") and the same sentence says where (a settings page, a flag, per workspace)."""
    before = text[max(0, start - 40) : start]
    return bool(_PERMITTED_BEFORE.search(before)) and bool(_SETTING_AFTER.search(text[end : end + 120]))


_QUOTED = re.compile("[\"'`“‘«]([^\"'`”’»\n]{3,200})[\"'`”’»]")


def without_mentions(text: str) -> str:
    """`text` with quoted examples blanked out (a quotation introduced by "such as", "e.g.", "phrases
    like"...): what the classifier reads, so that text *about* injection is not scored as one."""
    if not any(q in text for q in _QUOTES):
        return text
    return _QUOTED.sub(
        lambda m: " " * len(m.group()) if _META_BEFORE.search(text[max(0, m.start() - 40) : m.start()]) else m.group(),
        text,
    )


def role_spoof_spans(text: str) -> list[tuple[int, int, str]]:
    """(start, end, kind) of role labels followed by imperative cues, role tags, and frame escapes."""
    spans: list[tuple[int, int, str]] = []
    for m in _ROLE_LABEL.finditer(text):
        if _ROLE_CUES.search(text, m.end(), m.end() + 240):
            spans.append((m.start(), m.end(), "label"))
    for m in _ROLE_TAG.finditer(text):
        if _ROLE_CUES.search(text, m.end(), m.end() + 400):
            spans.append((m.start(), m.end(), "tag"))
    spans.extend((m.start(), m.end(), "frame") for m in _FRAME_ESCAPE.finditer(text))
    if "](#" in text:
        # a table of contents links "[System](#system)" to its own heading: not a role marker
        spans.extend(
            (m.start(), m.end(), "mdrole")
            for m in _MD_ROLE.finditer(text)
            if not m.group(2).lower().startswith(m.group(1).lower())
        )
    return spans


#: Per rule (same order as PHRASE_RULES): lower-case words every match contains, and how far before and after
#: such a word a match can reach. Long texts are searched only in these windows (found with str.find), which
#: keeps `scan_text` fast on large tool outputs; short texts are searched whole.
RULE_KEYS: tuple[tuple[tuple[str, ...], int, int], ...] = (
    (("ignore", "disregard", "forget", "override", "bypass"), 12, 260),
    (("abandon", "discard", "skip", "drop"), 12, 260),
    (("ignore", "disregard", "forget"), 12, 80),
    (("instruction", "directive", "orders", "task", "prompt"), 60, 40),
    (("are now",), 20, 80),
    (("system", "admin", "developer", "root", "security"), 12, 80),
    (("ignor", "vergiss"), 12, 80),
    (("supersede", "override", "replace", "precedence", "aside"), 20, 120),
    (("not", "don't", "dont", "never", "without"), 12, 120),
    (
        (
            "if you are",
            "note",
            "message",
            "instruction",
            "attention",
            "reading",
            "processing",
            "parsing",
            "summari",
            "crawling",
            "hey",
            "dear",
            "psst",
            "p.s",
            "p. s",
        ),
        40,
        120,
    ),
    (
        (
            "prompt",
            "instructions",
            "message",
            "key",
            "secret",
            "credential",
            "password",
            "token",
            "environment",
            "env",
            "ssh",
            "id_rsa",
            "id_ed25519",
            ".aws",
            "/etc/",
            "context window",
        ),
        160,
        40,
    ),
    (("send", "post", "upload", "forward", "transmit", "exfiltrate", "email", "submit", "leak"), 12, 320),
    (("url", "link", "image", "query", "parameter", "markdown"), 200, 40),
    (
        (
            "mcp.json",
            ".vscode/",
            ".claude/",
            "autoapprove",
            "enableallprojectmcpservers",
            "bypasspermissions",
            ".git/hooks",
            "bashrc",
            "zshrc",
            ".profile",
            "authorized_keys",
            "crontab",
        ),
        200,
        80,
    ),
    (("decode", "decrypt", "deobfuscate", "unscramble", "reverse", "translate"), 12, 240),
    (
        # every match names the reader (or "whoever"): searched around those words in long texts
        (
            "ai ",
            "ai,",
            "ai:",
            "ai-",
            "a.i.",
            "ais ",
            "llm",
            "language",
            "assistant",
            "agent",
            "bot",
            "summari",
            "copilot",
            "chatgpt",
            "claude",
            "gemini",
            "gpt",
            "automated",
            "model",
            "whoever",
            "whatever",
            "anyone",
            "anything",
        ),
        120,
        260,
    ),
    (
        ("summari", "process", "pars", "analy", "index", "ingest", "review", "evaluat", "answer", "respond", "this"),
        80,
        320,
    ),
    (("end of", "end  of", "</"), 12, 420),
    (("the user", "per the"), 12, 120),
)
assert len(RULE_KEYS) == len(PHRASE_RULES)


def windows(lowered: str, index: int) -> list[tuple[int, int]]:
    """Merged (start, end) ranges of `lowered` where rule `index` can match."""
    keys, before, after = RULE_KEYS[index]
    spans: list[tuple[int, int]] = []
    for key in keys:
        pos = lowered.find(key)
        while pos >= 0:
            spans.append((max(0, pos - before), pos + len(key) + after))
            pos = lowered.find(key, pos + 1)
    return merge_spans(spans)


def merge_spans(spans: list[tuple[int, int]]) -> list[tuple[int, int]]:
    """(start, end) windows sorted, overlapping ones joined."""
    spans.sort()
    merged: list[tuple[int, int]] = []
    for start, end in spans:
        if merged and start <= merged[-1][1]:
            merged[-1] = (merged[-1][0], max(merged[-1][1], end))
        else:
            merged.append((start, end))
    return merged


# --- obfuscation undone before the phrase rules (the classifier has its own normalisation, `features`) ---

_ENTITY = re.compile(r"&#(\d{1,7});|&#[xX]([0-9a-fA-F]{1,6});|&(amp|lt|gt|quot|apos|nbsp);")
_NAMED_ENTITIES = {"amp": "&", "lt": "<", "gt": ">", "quot": '"', "apos": "'", "nbsp": " "}
_PERCENT_RUN = re.compile(r"(?:%[0-9A-Fa-f]{2})+")
#: invisible characters a word can be split with (they are reported on their own by `hidden`)
_INVISIBLE = frozenset(
    "\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b\u200c\u200d\u200e\u200f\u2060\u2061\u2062\u2063\u2064\ufeff"
)
_LEET_CHARS = {"0": "o", "1": "i", "3": "e", "4": "a", "5": "s", "7": "t", "@": "a", "$": "s", "!": "i", "|": "l"}
#: a run of letters, digits and leetspeak symbols (one "word" of obfuscated text)
_LEET_TOKEN = re.compile(r"[^\W_]*[0-9@$!|][\w@$!|]*")
#: three or more single letters each separated by one space, dot, dash, underscore, asterisk or middle dot
_SPACED = re.compile(r"(?<![^\W\d_])(?:[^\W\d_][ .\-_*·]){2,}[^\W\d_](?![^\W\d_])")
_SPACED_SEP = frozenset(" .-_*·")


@cache
def _confusables() -> dict[str, str]:
    from owstack.security.data_files import load

    return {str(k): str(v) for k, v in load("confusables")["map"].items()}


def _percent_decoded(run: str) -> str | None:
    try:
        return bytes.fromhex(run.replace("%", "")).decode("utf-8")
    except (ValueError, UnicodeDecodeError):
        return None


#: a JSON string escape of a character outside ASCII ("\u00e9", a surrogate pair "\ud83d\ude00"), as `json.dumps`
#: writes by default: a tool result in any other language reaches the scanner that way
_JSON_ESCAPE = re.compile(r"\\u([0-9a-fA-F]{4})(?:\\u([dD][c-fC-F][0-9a-fA-F]{2}))?")


def _json_unescaped(m: re.Match[str]) -> str | None:
    code = int(m.group(1), 16)
    if m.group(2) and 0xD800 <= code < 0xDC00:
        code = 0x10000 + ((code - 0xD800) << 10) + (int(m.group(2), 16) - 0xDC00)
    elif 0xD800 <= code < 0xE000:
        return None
    return chr(code) if code >= 0x80 else None


def _pieces(text: str) -> list[tuple[str, int]]:
    """(decoded character(s), index in `text`): HTML character references, percent-encoding and JSON `\\u` escapes
    undone."""
    out: list[tuple[str, int]] = []
    pos = 0
    specials = [m for rx in (_ENTITY, _PERCENT_RUN) for m in rx.finditer(text)] if ("&" in text or "%" in text) else []
    if "\\u" in text:
        specials.extend(_JSON_ESCAPE.finditer(text))
    for m in sorted(specials, key=lambda m: m.start()):
        if m.start() < pos:
            continue
        decoded: str | None
        if m.re is _JSON_ESCAPE:
            decoded = _json_unescaped(m)
        elif m.re is _ENTITY:
            if m.group(3):
                decoded = _NAMED_ENTITIES[m.group(3)]
            else:
                code = int(m.group(1)) if m.group(1) else int(m.group(2), 16)
                decoded = chr(code) if 0 < code < 0x110000 else None
        else:
            decoded = _percent_decoded(m.group())
        if decoded is None:
            continue
        out.extend((c, i) for i, c in enumerate(text[pos : m.start()], pos))
        out.extend((c, m.start()) for c in decoded)
        pos = m.end()
    out.extend((c, i) for i, c in enumerate(text[pos:], pos))
    return out


def _leet(token: str) -> str:
    """`token` with leetspeak undone when it mixes letters and leet symbols ("1gn0r3", "pr3v!ous")."""
    letters = sum(c.isalpha() for c in token)
    if letters < 2 or letters == len(token):
        return token
    chars = list(token)
    for i, c in enumerate(chars):
        if c in _LEET_CHARS and (c != "!" or (i + 1 < len(chars) and chars[i + 1].isalpha())):
            chars[i] = _LEET_CHARS[c]
    return "".join(chars)


def deobfuscated(text: str) -> tuple[str, list[int]] | None:
    """A view of `text` with common obfuscation undone, for the phrase rules: HTML character references and
    percent-encoding decoded, NFKC (full-width and mathematical letters), invisible characters dropped,
    Latin words spelt with look-alike letters folded, leetspeak words undone, spaced-out letters joined
    ("i g n o r e", "i.g.n.o.r.e"). Returns (view, index of each view character in `text`), or None when
    nothing changed. Each view character maps back to one character of `text`, so findings keep offsets."""
    pieces = _pieces(text)
    chars: list[str] = []
    index: list[int] = []
    for c, i in pieces:
        if c in _INVISIBLE:
            continue
        folded = unicodedata.normalize("NFKC", c) if not c.isascii() else c
        for f in folded.lower():
            chars.append(f)
            index.append(i)
    view = "".join(chars)
    view, index = _fold_words(view, index)
    if view == text.lower():
        return None
    return view, index


def _fold_words(view: str, index: list[int]) -> tuple[str, list[int]]:
    """Look-alike letters inside Latin words, leetspeak, and spaced-out letters (same-length or shorter)."""
    confusables = _confusables()
    out: list[str] = []
    out_index: list[int] = []
    pos = 0
    for m in _WORDISH.finditer(view):
        out.extend(view[pos : m.start()])
        out_index.extend(index[pos : m.start()])
        token = m.group()
        if not token.isascii() and any(c.isascii() and c.isalpha() for c in token):
            token = "".join(confusables.get(c, c) for c in token)  # a Latin word with look-alikes in it
        if not token.isalpha():
            token = _leet(token)
        out.extend(token)
        out_index.extend(index[m.start() : m.end()])
        pos = m.end()
    out.extend(view[pos:])
    out_index.extend(index[pos:])
    folded = "".join(out)
    # spaced-out letters: drop the separators
    chars: list[str] = []
    kept: list[int] = []
    pos = 0
    for m in _SPACED.finditer(folded):
        chars.extend(folded[pos : m.start()])
        kept.extend(out_index[pos : m.start()])
        for j in range(m.start(), m.end()):
            if folded[j] not in _SPACED_SEP:
                chars.append(folded[j])
                kept.append(out_index[j])
        pos = m.end()
    chars.extend(folded[pos:])
    kept.extend(out_index[pos:])
    return "".join(chars), kept


_WORDISH = re.compile(r"[\w@$!|]+")

#: where obfuscation may be: character references, percent-encoding, invisible or full-width characters,
#: Latin letters next to look-alike ones, digits or symbols inside words, spaced-out letters
_OBFUSCATION_HINT = re.compile(
    r"&#|%[0-9A-Fa-f]{2}|\\u[0-9a-fA-F]{4}|"
    "[\u00ad\u034f\u061c\u115f\u1160\u17b4\u17b5\u180e\u200b-\u200f\u2060-\u2064\ufeff]"
    "|[\uff01-\uff5e\U0001d400-\U0001d7ff]|[A-Za-z][\u0250-\u02af\u0370-\u058f\u1d00-\u1d7f]"
    "|[\u0250-\u02af\u0370-\u058f\u1d00-\u1d7f][A-Za-z]|[A-Za-z][0-9@$!|]{1,3}[A-Za-z]"
    r"|(?<![\w@$|])[0-9@$|][A-Za-z]{2}|[A-Za-z]{2}[0-9@$|](?![\w@$|])"
    r"|(?<![^\W\d_])[^\W\d_][ .\-_*·][^\W\d_][ .\-_*·][^\W\d_](?![^\W\d_])"
)
#: texts are read around obfuscation hints (a short text whole), up to VIEW_BUDGET characters
VIEW_BUDGET = 65_536
_VIEW_REACH = 400


def obfuscation_views(text: str) -> list[tuple[str, list[int]]]:
    """`deobfuscated` views of `text` (whole, or of the passages around obfuscation hints in a longer text),
    each with the index in `text` of every view character. Empty when there is nothing to undo."""
    hints = [m.start() for m in _OBFUSCATION_HINT.finditer(text)]
    if not hints:
        return []
    if len(text) <= 2 * _VIEW_REACH:
        view = deobfuscated(text)
        return [view] if view else []
    spans: list[tuple[int, int]] = []
    for pos in hints:
        start, end = max(0, pos - _VIEW_REACH), min(len(text), pos + _VIEW_REACH)
        if spans and start <= spans[-1][1]:
            spans[-1] = (spans[-1][0], end)
        else:
            spans.append((start, end))
    out: list[tuple[str, list[int]]] = []
    budget = VIEW_BUDGET
    for start, end in spans:
        if budget <= 0:
            break
        end = min(end, start + budget)
        budget -= end - start
        view = deobfuscated(text[start:end])
        if view:
            out.append((view[0], [i + start for i in view[1]]))
    return out


# --- words run together: "ignorepreviousinstructions", "ignoreAllPrevious", "ignore_all_previous", "a.b.c" ---

#: a verb of the phrase rules joined to the next word without a space (or with `_`, `.`, `-`)
_JOINED_HINT = re.compile(
    r"(?i)(?:ignore|disregard|forget|override|bypass|reveal|donot|dont|print|dump|leak|output|show|skip|drop)"
    r"[_.\-]?(?:all|any|every|the|your|my|previous|prior|above|earlier|preceding|system|initial|original|secret|api"
    r"|conversation|chat|users?|tell|mention|inform|instructions?|rules|guidelines|prompts?|directives|directions"
    r"|safety)|you[_.\-]?are[_.\-]?now"
)
_JOINED_CHARS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_.-")
#: the pieces of a joined word: capitals, capitalised or lower-case runs, digits
_JOINED_PIECE = re.compile(r"[A-Z]{2,}(?![a-z])|[A-Z]?[a-z]+|[A-Z]|\d+")
#: the words a run-together phrase is cut into (those of the phrase rules); a piece is cut only when all of it
#: is made of these
_JOINED_WORDS = (
    "ignore disregard forget override bypass reveal print dump leak output show repeat tell give share send forward"
    " all any every the your my our his her their previous prior above earlier preceding original initial existing"
    " system developer safety other instructions instruction prompt prompts rules rule guidelines directives"
    " constraints restrictions policies programming messages commands orders context everything anything what"
    " secret secrets api key keys password passwords credentials token tokens env environment variables do not dont"
    " user users human operator owner anyone them me to of a an and then now please you are new mode chat log logs"
    " history conversation this that file is safe it mention inform notify warn alert before told given"
    " in with from reply respond answer only directions direction skip drop"
)
_JOINED_VOCABULARY = frozenset(_JOINED_WORDS.split())
_JOINED_LONGEST = max(len(w) for w in _JOINED_VOCABULARY)


def _segment(piece: str) -> list[str] | None:
    """`piece` (lower case) cut into the fewest vocabulary words, or None when it cannot be."""
    best: list[list[str] | None] = [[]] + [None] * len(piece)
    for end in range(1, len(piece) + 1):
        for start in range(max(0, end - _JOINED_LONGEST), end):
            head = best[start]
            word = piece[start:end]
            if head is not None and word in _JOINED_VOCABULARY:
                candidate = [*head, word]
                current = best[end]
                if current is None or len(candidate) < len(current):
                    best[end] = candidate
    return best[len(piece)]


def _joined_words(token: str) -> list[tuple[str, int]]:
    """(word, offset in `token`) of a joined token, run-together pieces cut into vocabulary words."""
    out: list[tuple[str, int]] = []
    for m in _JOINED_PIECE.finditer(token):
        piece = m.group().lower()
        words = _segment(piece) if len(piece) >= 6 and piece not in _JOINED_VOCABULARY else None
        if not words:
            out.append((piece, m.start()))
            continue
        pos = m.start()
        for word in words:
            out.append((word, pos))
            pos += len(word)
    return out


def _is_code_name(text: str, start: int, end: int) -> bool:
    """A function or test name: `def test_ignore_previous_instructions(`, `ignorePreviousInstructions()`."""
    head = text[start : start + 5].lower()
    return head.startswith("test") or text[end : end + 1] == "(" or text[max(0, start - 4) : start] in ("def ", "fun ")


#: the first words of `_JOINED_HINT`
_JOINED_VERBS = "ignore disregard forget override bypass reveal donot dont print dump leak output show skip drop you"


def _joined_hints(text: str) -> list[re.Match[str]]:
    """`_JOINED_HINT` matches, tried only where one of its first words is (found with str.find)."""
    lowered = text.lower()
    if len(lowered) != len(text):
        return list(_JOINED_HINT.finditer(text))
    starts: set[int] = set()
    for verb in _JOINED_VERBS.split():
        pos = lowered.find(verb)
        while pos >= 0:
            starts.add(pos)
            pos = lowered.find(verb, pos + 1)
    found = (_JOINED_HINT.match(text, pos) for pos in sorted(starts))
    return [m for m in found if m]


def joined_views(text: str) -> list[tuple[str, list[int]]]:
    """Views of the passages around words that run a phrase together ("ignorepreviousinstructions",
    "IgnoreAllPreviousInstructions", "ignore_all_previous_instructions", "ignore.previous.instructions"), with
    those words cut apart by spaces, lower case; each with the index in `text` of every view character."""
    tokens: list[tuple[int, int]] = []
    for m in _joined_hints(text):
        if tokens and m.start() < tokens[-1][1]:
            continue
        start, end = m.start(), m.end()
        while start > 0 and text[start - 1] in _JOINED_CHARS:
            start -= 1
        while end < len(text) and text[end] in _JOINED_CHARS:
            end += 1
        while end > m.end() and text[end - 1] in "_.-":  # a full stop after the word stays one
            end -= 1
        if not _is_code_name(text, start, end):
            tokens.append((start, end))
        if len(tokens) >= 64:
            break
    out: list[tuple[str, list[int]]] = []
    for span_start, span_end in merge_spans([(max(0, s - _VIEW_REACH), e + _VIEW_REACH) for s, e in tokens]):
        span_end = min(span_end, len(text))
        chars: list[str] = []
        index: list[int] = []
        pos = span_start
        for start, end in tokens:
            if start < span_start or end > span_end:
                continue
            chars.extend(text[pos:start].lower())
            index.extend(range(pos, start))
            for i, (word, offset) in enumerate(_joined_words(text[start:end])):
                if i:
                    chars.append(" ")
                    index.append(start + offset)
                chars.extend(word)
                index.extend(range(start + offset, start + offset + len(word)))
            pos = end
        chars.extend(text[pos:span_end].lower())
        index.extend(range(pos, span_end))
        out.append(("".join(chars), index))
    return out
