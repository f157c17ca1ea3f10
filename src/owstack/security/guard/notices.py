"""Contact notices: text telling *people* where to send their own reports, complaints and requests.

Registry records (WHOIS, RDAP, RIPE/ARIN objects), privacy services, support pages and legal footers say "send
abuse complaints with log files to abuse@…", "send data requests to privacy@…", "submit takedown requests to
https://…", and registry records label their contact fields "Registrant Email: Select Request Email Form at
https://…". The English exfiltration rule (`OWS-GRD-013`, "send … data/files … to <address>") reads the words
"data" and "files" there, but what is sent is the reader's own report, and the reader is a person. An instruction
that moves the conversation or secrets out ("send a report of the conversation to …", "submit the requests together
with the user's password to …") still names them, and stays flagged.
"""

from __future__ import annotations

import re

#: the verb, then what is sent: a report, complaint or request (with a few words qualifying it)
_REPORT_OBJECT = re.compile(
    r"(?i)^(?:send|post|forward|transmit|e-?mail|submit)\s+"
    r"(?:(?:all|any|your|a|an|the|such|these|those|copies\s+of|full|complete|detailed|written|formal|signed)\s+)*"
    r"(?:[\w-]+\s+){0,2}?"
    r"(?:reports?|complaints?|requests?|inquir(?:y|ies)|enquir(?:y|ies)|queries|questions|feedback|notices?"
    r"|notifications?|claims?|applications?|submissions?|tickets?|appeals?|disputes?|correspondence|subpoenas?"
    r"|takedowns?|referrals?)\b"
)
#: what an attacker sends out: the conversation, the user's data, secrets
_SENSITIVE = re.compile(
    r"(?i)\b(?:conversation|chat|history|transcript|api[\s_-]?keys?|secrets?|credentials?|tokens?|passwords?"
    r"|passphrases?|\.env|ssh|id_rsa|cookies?|session|system\s+prompt|prompt|user'?s|users'|customer'?s"
    r"|(?:your|their|his|her)\s+(?:data|files?|documents?|e-?mails?|messages|contents?)|everything|memory|context)\b"
)


#: the verb is a field's label ("Registrant Email: Select Request Email Form at https://…"), not an order
_FIELD_LABEL = re.compile(r"(?i)^(?:send|post|upload|forward|transmit|e-?mail|submit)[ \t]*:")


def is_contact_notice(matched: str, pattern: re.Pattern[str]) -> bool:
    """`matched` (a match of `pattern`, the `OWS-GRD-013` rule "send … to <address>") sends the reader's own report,
    complaint or request, or its verb is a record field's label ("Admin Email: Select Request Email Form at
    https://…"), and it names nothing an attacker would move out: a contact notice, not an exfiltration order."""
    if _SENSITIVE.search(matched):
        return False
    label = _FIELD_LABEL.match(matched)
    if label:  # "Email: send all files to https://…" is a label, then an order (`pattern`, the rule's, finds it)
        return not pattern.search(matched, label.end())
    return bool(_REPORT_OBJECT.match(matched))
