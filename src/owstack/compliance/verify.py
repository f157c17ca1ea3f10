"""`owstack audit verify`: check every stream's chain, checkpoints, manifest and prune marker.

The kinds of damage reported (the first one found per stream):

    modified            a record's content no longer matches its hash, or it was altered and its hash
                        recomputed (the next record links to the old hash), or the chain after it was
                        rewritten (named through the signed `covers` list of the next checkpoint), or its
                        line is not the canonical form the writer wrote (a duplicate key that parsers
                        read differently, reordered keys); a manifest giving its checkpoint another hash,
                        segment or offset than the record has
    deleted             records missing inside the chain (a sequence gap)
    segment_missing     a segment file missing (at the start without a signed prune marker, or in between)
    reordered           records out of order
    inserted            a record that is not part of the chain (also: a record of another stream, a second
                        stream_opened)
    truncated           the log ends before a checkpoint the manifest (or an external anchor) vouches for
    bad_signature       a checkpoint, manifest or prune marker whose Ed25519 signature does not verify
    checkpoint_counter  a gap or repeat in the checkpoint counter
    unknown_key         signed by a key not stored with the log (or not among --trusted-key), or by another key
                        than the rest of its run (a writer signs a run with one key; a new key only after a
                        resume record)
    appended_after_seal records after a stream's sealing checkpoint: with no resume record, or with a
                        resume record that the writer's signed checkpoint does not follow at once (a
                        writer always signs a checkpoint in the same write as its resume record)
    corrupt             a line that is not a record, a torn record inside the stream, bytes at the end that
                        are not the start of the next record, a segment that is not a regular file in its
                        stream's folder (symlink, FIFO, device), a line over MAX_LINE_BYTES, an unreadable
                        manifest or prune marker
    rewritten           a record at an anchored sequence number with a different hash
    manifest_missing    segments without a manifest
    stream_missing      an anchored stream that is gone, <node>-N gone while <node>-M (M > N) is there, or
                        no stream left although writers published signing keys (every stream deleted)
    log_missing         no audit log at all where one was expected (no streams, no keys, and no
                        top-level manifest.json saying `"streams": []`)

Every damage names the first damaged record: its stream, its segment (in `where`) and its sequence number
(a truncated tail or a missing segment: the first missing one; records cut out of a segment: the record
where the chain breaks; a line that is not a record: the sequence number of its place). A stream's
problems are reported in the order of the chain: a manifest that lies is reported only when the records
themselves are intact.

A stream that ends without a seal and is not held by a live writer ended in a crash (kill -9, power
loss): that is reported as a warning, not damage, because from the log alone it cannot be told apart from
a truncation after the last signed checkpoint. See docs/compliance.md, "What truncation can be detected".
"""

from __future__ import annotations

import codecs
import re
from collections import deque
from pathlib import Path
from typing import Any, NoReturn

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey

from owstack.compliance import chain
from owstack.compliance.entries import Entry, Lookahead, entries, read_strict_json
from owstack.compliance.keys import read_public_keys
from owstack.compliance.report import Damage, Report, StreamResult, load_anchor
from owstack.compliance.segments import (
    MANIFEST,
    PRUNED,
    is_live,
    list_segments,
    list_streams,
    segment_name,
)
from owstack.compliance.writer import MAX_STREAMS

LOOKAHEAD = 64
#: how far a checkpoint whose signature fails is searched for the sequence number it was signed at (records
#: removed or inserted before it and the chain renumbered): 2 x this many signature checks, once per stream
RENUMBER_SEARCH = 2048
#: since_cp keeps at most this many records (a checkpoint's `covers` is compared from its end)
SINCE_CP_MAX = 1 << 17
_OPENING = (chain.STREAM_OPENED, chain.STREAM_RESUMED)
_STREAM_NUMBER = re.compile(r"^(.+)-(\d+)$")


def _digest(covers: Any) -> str | None:
    """The signed form of a checkpoint's `covers`: its digest (a record holds the list, or the digest)."""
    return chain.covers_digest(covers) if isinstance(covers, list) else None if covers is None else str(covers)


class _Found(Exception):
    def __init__(self, damage: Damage) -> None:
        self.damage = damage


def verify(
    directory: Path,
    *,
    anchors: dict[str, tuple[int, str]] | None = None,
    trusted_keys: set[str] | None = None,
) -> Report:
    """Check the whole log. `anchors`: stream -> (seq, hash) recorded elsewhere earlier (`--anchor`)."""
    keys = read_public_keys(directory) if directory.is_dir() else {}
    anchors = anchors or {}
    report = Report(directory=str(directory), streams=[])
    names = set()
    try:
        stream_dirs = list_streams(directory) if directory.is_dir() else []
    except OSError as exc:
        report.missing.append(Damage("corrupt", "*", "streams/", None, f"cannot be listed: {exc.strerror or exc}"))
        stream_dirs = []
    for stream_dir in stream_dirs:
        names.add(stream_dir.name)
        check = _StreamCheck(stream_dir, keys, anchors.get(stream_dir.name), trusted_keys)
        report.streams.append(check.run())
    for name in sorted(set(anchors) - names):
        report.missing.append(Damage("stream_missing", name, "streams/", None, "an anchored stream is gone"))
    for name in _gaps(names):
        report.missing.append(
            Damage(
                "stream_missing",
                name,
                "streams/",
                None,
                "gone while a later stream of its node is there (writers claim <node>-0, -1, ... in order)",
            )
        )
    if not report.damage and not any(s.records for s in report.streams):
        empty = _empty_log(directory, keys)
        if empty is not None:
            report.missing.append(empty)
    return report


def _gaps(names: set[str]) -> list[str]:
    """Streams missing below a node's highest stream number: a writer creates <node>-0, -1, ... in turn."""
    numbers: dict[str, set[int]] = {}
    for name in names:
        m = _STREAM_NUMBER.match(name)
        if m:
            numbers.setdefault(m.group(1), set()).add(int(m.group(2)))
    return [
        f"{node}-{n}"
        for node, got in sorted(numbers.items())
        for n in range(min(max(got), MAX_STREAMS))
        if n not in got
    ]


def _empty_log(directory: Path, keys: dict[str, Ed25519PublicKey]) -> Damage | None:
    """An audit directory without a single record is damage unless its top-level manifest says that no
    stream ever existed; signing keys published by writers prove that one did."""
    if keys:
        return Damage(
            "stream_missing",
            "*",
            "streams/",
            None,
            f"no stream holds a record, but {len(keys)} writer signing key(s) were published: the log was deleted",
        )
    try:
        manifest = read_strict_json(directory / MANIFEST) if directory.is_dir() else None
    except ValueError as exc:
        return Damage("corrupt", "*", MANIFEST, None, str(exc))
    if manifest is not None and manifest.get("streams") == []:
        return None
    return Damage("log_missing", "*", str(directory), None, "no audit log here (no streams, no keys, no manifest)")


class _StreamCheck:
    def __init__(
        self,
        stream_dir: Path,
        keys: dict[str, Ed25519PublicKey],
        anchor: tuple[int, str] | None,
        trusted: set[str] | None,
    ) -> None:
        self.dir = stream_dir
        self.name = stream_dir.name
        self.keys = keys
        self.anchor = anchor
        self.trusted = trusted
        self.result = StreamResult(stream=self.name)
        self.counter: int | None = None
        self.manifest_cp: dict[str, Any] = {}
        self.manifest_seen = False
        #: what is wrong with the manifest (reported once the records are found intact: they come first)
        self.manifest_damage: Damage | None = None
        self.since_cp: deque[Entry] = deque(maxlen=SINCE_CP_MAX)  # the records since the last checkpoint
        self.resume: Entry | None = None  # a resume record not yet followed by its writer's checkpoint
        self.resume_after_seal = False
        #: the key that signs the current run (a writer signs all its checkpoints with one key; a new run,
        #: after a resume record, may use another)
        self.run_key: str | None = None
        self.prev_type = ""
        self.at: Entry | None = None  # the entry being checked (for an unexpected error's report)
        self.exp_seq = 1
        self.last_segment = 0

    def run(self) -> StreamResult:
        try:
            if self.dir.is_symlink():
                self.fail("corrupt", None, "the stream's folder is a symbolic link: its records live elsewhere", "")
            self._run()
        except _Found as found:
            self.result.damage = found.damage
        except OSError as exc:
            self.result.damage = self._damage("corrupt", self.at, f"cannot be read: {exc.strerror or exc}", None)
        except Exception as exc:  # whatever the folder holds, verify reports it rather than crash
            self.result.damage = self._damage("corrupt", self.at, f"unreadable ({type(exc).__name__}: {exc})", None)
        return self.result

    def _damage(
        self, kind: str, entry: Entry | None, message: str, where: str | None, seq: int | None = None
    ) -> Damage:
        place = where if where is not None else (entry.where if entry else "stream")
        if seq is None and entry is not None:
            seq = entry.seq
        return Damage(kind, self.name, place or "stream", seq, message)

    def fail(
        self, kind: str, entry: Entry | None, message: str, where: str | None = None, seq: int | None = None
    ) -> NoReturn:
        raise _Found(self._damage(kind, entry, message, where, seq))

    def _run(self) -> None:
        segments = list_segments(self.dir)
        try:
            manifest = read_strict_json(self.dir / MANIFEST)
        except ValueError as exc:
            manifest = None
            self.manifest_damage = self._damage("corrupt", None, str(exc), MANIFEST)
        if not segments and manifest is None and self.manifest_damage is None:
            return
        if manifest is None and self.manifest_damage is None:
            self.manifest_damage = self._damage(
                "manifest_missing", None, "segments but no manifest.json (deleted?)", MANIFEST
            )
        if manifest is not None:
            self._read_manifest(manifest)
        exp_seq, exp_prev, first_index = 1, chain.genesis_hash(self.name), 1
        marker = self._prune_marker()
        if marker is not None:
            first_index = int(marker["first_segment"])
            segments = [(i, p) for i, p in segments if i >= first_index]
            exp_seq, exp_prev = int(marker["first_seq"]), str(marker["anchor_prev_hash"])
            self.result.pruned_before_seq = exp_seq
        if not segments:
            if self.manifest_damage is not None:
                raise _Found(self.manifest_damage)
            self.fail(
                "truncated",
                None,
                "every segment is gone but the manifest names a checkpoint",
                f"{segment_name(first_index)} (missing)",
                exp_seq,
            )
        self._walk(segments, exp_seq, exp_prev, first_index)
        self._finish(segments)

    def _read_manifest(self, manifest: dict[str, Any]) -> None:
        """Keep the manifest's checkpoint if it is signed and well formed, else note what is wrong with it."""
        cp = manifest.get("checkpoint")
        try:
            if manifest.get("stream", self.name) != self.name:
                self.fail("corrupt", None, f"the manifest names another stream ({manifest.get('stream')!r})", MANIFEST)
            if not isinstance(cp, dict):
                self.fail("corrupt", None, "the manifest holds no checkpoint object", MANIFEST)
            for key in ("seq", "segment", "offset", "counter"):
                if not isinstance(cp.get(key), int) or isinstance(cp.get(key), bool):
                    self.fail("corrupt", None, f"the manifest's checkpoint has no integer `{key}`", MANIFEST)
            self._check_signed_checkpoint(cp, cp.get("signature"), None, MANIFEST)
        except _Found as found:
            self.manifest_damage = found.damage
            return
        self.manifest_cp = cp

    def _segment_gap(self, present: set[int], after: int, upto: int, exp_seq: int) -> None:
        missing = [i for i in range(after + 1, upto) if i not in present]
        if not missing:
            return
        names = ", ".join(segment_name(i) for i in missing[:3]) + (
            f" ... ({len(missing)} in all)" if len(missing) > 3 else ""
        )
        where = f"between {segment_name(after)} and {segment_name(upto)}" if after else f"before {segment_name(upto)}"
        prune = " and no signed prune marker covers it" if not after else ""
        self.fail(
            "segment_missing",
            None,
            f"{names} missing {where}{prune}: seq {exp_seq} on are gone",
            names,
            exp_seq,
        )

    def _walk(self, segments: list[tuple[int, Path]], exp_seq: int, exp_prev: str, first_index: int) -> None:
        present = {i for i, _ in segments}
        la = Lookahead(entries(segments))
        prev: Entry | None = None
        torn: Entry | None = None
        sealed = False
        current = first_index - 1
        for e in la:
            self.at, self.exp_seq = e, exp_seq
            if e.segment != current:
                self._segment_gap(present, current, e.segment, exp_seq)
                current = e.segment
            if e.state == "unreadable":
                self.fail("corrupt", e, e.problem, segment_name(e.segment), exp_seq)
            if e.state == "torn":
                if torn is not None:
                    self._torn_unaccounted(torn, exp_seq)
                torn = e
                continue
            if e.state == "corrupt":
                if e.seq is None:
                    e.seq = exp_seq
                self.fail("corrupt", e, e.problem or "not a JSON audit record")
            if torn is not None and (e.type != chain.STREAM_RESUMED or (e.record or {}).get("torn") != _torn(torn)):
                self._torn_unaccounted(torn, exp_seq)
            if e.state == "edited" or not e.hash_ok:
                problem = e.problem if e.state == "edited" else "its content does not match its entry hash"
                self._fail_at_place(e, prev, exp_seq, exp_prev, "modified", problem)
            if e.stream != self.name:  # at the place of seq exp_seq, whatever it claims
                where = f"{segment_name(e.segment)} line {e.line} (seq {exp_seq}; it claims seq {e.seq})"
                self.fail("inserted", e, f"a record of stream {e.stream!r}, not of this one", where, exp_seq)
            if e.seq != exp_seq or e.prev != exp_prev:
                self._classify(e, la, prev, exp_seq, exp_prev)
            self._check_resume_order(e, sealed)
            self._check_entry(e, prev, torn, sealed)
            sealed = e.type == chain.CHECKPOINT and bool(_cp(e).get("sealed"))
            torn = None
            exp_seq, exp_prev, prev = (e.seq or exp_seq) + 1, e.hash, e
            self.prev_type = e.type
        self.at, self.exp_seq = None, exp_seq
        self._segment_gap(present, current, max(present) + 1, exp_seq)
        if torn is not None:
            self._check_torn_tail(torn, exp_seq, exp_prev, sealed)
        if self.resume is not None:
            self.result.warnings.append(
                f"the stream ends with a resume record ({self.resume.where}) and not the checkpoint its writer "
                "signs with it: a crash while the writer was opening the stream"
            )
        self.result.state = "sealed" if sealed else "open"

    def _fail_at_place(
        self, e: Entry, prev: Entry | None, exp_seq: int, exp_prev: str, kind: str, why: str
    ) -> NoReturn:
        """A record found bad in itself: named at the sequence number of its place in the chain when it links
        to the record before it (its own `seq` may be what was changed)."""
        if e.prev == exp_prev and e.seq != exp_seq:
            where = f"{segment_name(e.segment)} line {e.line} (seq {exp_seq}; it claims seq {e.seq})"
            self.fail(kind, e, why, where, exp_seq)
        self.fail(kind, e, why)

    def _torn_unaccounted(self, torn: Entry, exp_seq: int) -> NoReturn:
        self.fail(
            "corrupt",
            torn,
            f"a torn record at {segment_name(torn.segment)} offset {torn.offset} that no resume record accounts for",
            f"{segment_name(torn.segment)} line {torn.line}",
            exp_seq,
        )

    def _check_torn_tail(self, torn: Entry, exp_seq: int, exp_prev: str, sealed: bool) -> None:
        """The stream ends in a line without a newline: a write torn by a crash is the start of the next
        record as the writer serialises it (canonical JSON, keys in order, linking to the last record; after
        a seal, the next run's resume record). Anything else was appended to the log."""
        problem = torn.problem or _torn_problem(torn.head, exp_seq, exp_prev, self.name, sealed)
        if problem is not None:
            self.fail(
                "corrupt",
                torn,
                f"{torn.size} bytes after the last record (offset {torn.offset}) that are not a torn write: {problem}",
                f"{segment_name(torn.segment)} line {torn.line}",
                exp_seq,
            )
        self.result.torn = _torn(torn)

    def _check_resume_order(self, e: Entry, sealed: bool) -> None:
        """After a seal only a resume record may come, and after a resume record only the checkpoint that
        its writer signed in the same write: a resume record is unsigned, so anyone could append one."""
        resume = self.resume
        if resume is not None and e.type != chain.CHECKPOINT:
            kind = "appended_after_seal" if self.resume_after_seal else "inserted"
            self.fail(kind, resume, "a resume record that no signed checkpoint follows: forged, records after it too")
        self.resume = e if e.type == chain.STREAM_RESUMED else None
        self.resume_after_seal = sealed
        if sealed and e.type != chain.STREAM_RESUMED:
            self.fail("appended_after_seal", e, "a record after the sealing checkpoint without a resume record")

    def _check_entry(self, e: Entry, prev: Entry | None, torn: Entry | None, sealed: bool) -> None:
        r = self.result
        r.records += 1
        if r.first_seq is None:
            r.first_seq, r.first_time = e.seq, e.time
        r.last_seq, r.last_hash, r.last_time = e.seq, e.hash, e.time or r.last_time
        self.last_segment = e.segment
        r.unsigned_tail += 1
        if self.anchor and e.seq == self.anchor[0] and e.hash != self.anchor[1]:
            self.fail("rewritten", e, "the record at the anchored sequence number has a different hash")
        if e.type == chain.STREAM_OPENED and e.seq != 1:
            self.fail("inserted", e, "a stream is opened once, at seq 1: this opening record was added later")
        if self.prev_type == chain.STREAM_OPENED and e.type not in (chain.CHECKPOINT, chain.STREAM_RESUMED):
            # the writer signs a checkpoint in the same write as the opening record (a crash that tore that
            # write is followed by the next run's resume record)
            self.fail("deleted", e, "the checkpoint signed with the stream's opening record is gone")
        if e.type == chain.CHECKPOINT:
            self._checkpoint(e)
            r.checkpoints += 1
            r.last_checkpoint_seq = e.seq
            r.unsigned_tail = 0
            self.since_cp.clear()
            self.since_cp.append(e)
        else:
            self.since_cp.append(e)
        if e.seq == self.manifest_cp.get("seq"):
            self._check_manifest_record(e)
        if e.type == chain.STREAM_RESUMED:
            assert e.record is not None
            previous = e.record.get("previous")
            if not isinstance(previous, dict):
                self.fail("modified", e, "the resume record does not name the end of the previous run")
            if prev is not None and (previous.get("seq") != prev.seq or previous.get("entry_hash") != prev.hash):
                self.fail("modified", e, "the resume record names a different end of the previous run")
            if prev is not None and previous.get("sealed") is not sealed:
                self.fail("modified", e, "the resume record misstates whether the previous run was sealed")
            if torn is None and e.record.get("torn"):
                self.fail("modified", e, "the resume record declares a torn record that is not there")

    def _check_manifest_record(self, e: Entry) -> None:
        """The record at the manifest's sequence number is the checkpoint the manifest copies."""
        cp = self.manifest_cp
        if e.hash != cp.get("entry_hash"):
            if e.type == chain.CHECKPOINT and (e.record or {}).get("signature") == cp.get("signature"):
                self.manifest_damage = self._damage(
                    "modified",
                    None,
                    f"the manifest gives the checkpoint at seq {e.seq} another entry hash than the record has",
                    MANIFEST,
                )
                return
            self.fail("rewritten", e, "the manifest's signed checkpoint has a different hash here")
        self.manifest_seen = True
        if cp.get("segment") != e.segment or cp.get("offset") != e.offset:
            self.manifest_damage = self._damage(
                "modified",
                None,
                f"the manifest places its checkpoint (seq {e.seq}) at {segment_name(cp['segment'])} offset "
                f"{cp['offset']}, but it is at {segment_name(e.segment)} offset {e.offset}",
                MANIFEST,
            )

    def _checkpoint(self, e: Entry) -> None:
        assert e.record is not None
        cp = e.record.get("checkpoint")
        if not isinstance(cp, dict):
            self.fail("modified", e, "a checkpoint record without a checkpoint object")
        covers = cp.get("covers")
        signed = {**cp, "seq": e.seq, "time": e.record.get("time")}
        if covers is not None:
            if not isinstance(covers, list) or not all(isinstance(c, str) for c in covers):
                self.fail("modified", e, "the checkpoint's `covers` list is malformed")
            signed["covers"] = chain.covers_digest(covers)
        try:
            self._check_signed_checkpoint(signed, e.record.get("signature"), e, None)
        except _Found as found:
            if found.damage.kind == "bad_signature" and isinstance(covers, list):
                self._renumbered(e, signed, covers)
            opening = self.since_cp[-1] if self.since_cp else None
            if found.damage.kind == "unknown_key" and opening is not None and opening.type in _OPENING:
                # the first checkpoint of a run: the whole run, from its opening record, is not this log's
                self.fail(
                    "unknown_key", opening, f"this run's first checkpoint (seq {e.seq}) is {found.damage.message}"
                )
            raise
        key_id = str(cp.get("key_id"))
        if self.run_key is None or self.prev_type in _OPENING:
            self.run_key = key_id
        elif key_id != self.run_key:
            self.fail(
                "unknown_key",
                e,
                f"signed by {key_id}, but this run of the writer signed its checkpoints with {self.run_key}: a "
                "writer signs with one key until it stops (a new key follows a resume record)",
            )
        if cp.get("head_hash") == e.prev:
            return
        if covers:  # the chain before it was rewritten: the signed list names the first altered record
            covered = list(self.since_cp)[-len(covers) :]
            for want, got in zip(covers[-len(covered) :], covered, strict=False):
                if chain.cover(got.hash) != want:
                    self.fail(
                        "modified",
                        got,
                        f"altered and the chain after it rewritten: signed checkpoint #{cp.get('counter')} "
                        f"(seq {e.seq}) vouches for a different hash here",
                    )
        self.fail("bad_signature", e, "the checkpoint vouches for a head that is not the record before it")

    def _renumbered(self, e: Entry, signed: dict[str, Any], covers: list[str]) -> None:
        """A checkpoint whose signature holds at another sequence number was moved: records were removed (or
        inserted) before it and the chain renumbered. Its signed `covers` then names the first record that
        differs from what it vouched for."""
        key = self.keys.get(str(signed.get("key_id")))
        assert key is not None and e.seq is not None
        try:
            signature = chain.unb64(str((e.record or {}).get("signature")))
            fields = {k: signed[k] for k in ("head_hash", "counter", "time", "sealed", "covers")}
        except (KeyError, ValueError):
            return
        for shift in range(1, RENUMBER_SEARCH + 1):
            for seq in (e.seq + shift, e.seq - shift):
                if seq < 1:
                    continue
                try:
                    payload = chain.signed_payload(
                        stream=self.name,
                        seq=seq,
                        head_hash=str(fields["head_hash"]),
                        counter=int(fields["counter"]),
                        time=str(fields["time"]),
                        sealed=bool(fields["sealed"]),
                        covers=str(fields["covers"]),
                    )
                    key.verify(signature, payload)
                except (InvalidSignature, TypeError, ValueError):
                    continue
                kind, moved = ("deleted", "removed") if seq > e.seq else ("inserted", "added")
                n = abs(seq - e.seq)
                why = (
                    f"{n} record(s) {moved} before it and the chain renumbered: signed checkpoint "
                    f"#{fields['counter']} (now seq {e.seq}) was signed at seq {seq}"
                )
                first = seq - len(covers)
                for got in self.since_cp:
                    j = (got.seq or 0) - first
                    if 0 <= j < len(covers) and chain.cover(got.hash) != covers[j]:
                        self.fail(kind, got, why)
                self.fail(kind, e, why)

    def _check_signed_checkpoint(self, cp: dict[str, Any], signature: Any, e: Entry | None, where: str | None) -> None:
        key_id = str(cp.get("key_id"))
        key = self.keys.get(key_id)
        if key is None:
            self.fail("unknown_key", e, f"signed by {key_id}, which is not in public-keys/", where)
        if self.trusted is not None and key_id not in self.trusted:
            self.fail("unknown_key", e, f"signed by {key_id}, which is not among the trusted keys", where)
        if key_id not in self.result.key_ids:
            self.result.key_ids.append(key_id)
        try:
            payload = chain.signed_payload(
                stream=self.name,
                seq=int(cp["seq"]),
                head_hash=str(cp["head_hash"]),
                counter=int(cp["counter"]),
                time=str(cp["time"]),
                sealed=_bool(cp["sealed"]),
                covers=_digest(cp.get("covers")),
            )
            key.verify(chain.unb64(str(signature)), payload)
        except (InvalidSignature, KeyError, TypeError, ValueError):
            what = "the manifest's checkpoint" if e is None else f"checkpoint #{cp.get('counter')}"
            self.fail("bad_signature", e, f"{what}: the signature does not verify (forged or rewritten)", where)
        if e is None:
            return
        counter = int(cp["counter"])
        if self.counter is not None and counter != self.counter + 1:
            self.fail("checkpoint_counter", e, f"checkpoint #{counter} follows #{self.counter}")
        self.counter = counter

    def _classify(self, e: Entry, la: Lookahead, prev: Entry | None, exp_seq: int, exp_prev: str) -> None:
        """Name the damage at the first record that does not continue the chain."""
        ahead = [a for a in la.peek(LOOKAHEAD) if a.state == "ok"]
        if any(a.hash == e.prev for a in ahead) or (e.seq is not None and e.seq < exp_seq and prev is None):
            self.fail("reordered", e, f"it links to a record that comes after it (expected seq {exp_seq} here)")
        if ahead and ahead[0].seq == exp_seq and ahead[0].prev == exp_prev:
            self.fail("inserted", e, f"not part of the chain: the record after it links to seq {exp_seq - 1}")
        if e.prev == exp_prev:  # in its place in the chain, with another seq: the seq was changed
            self._fail_at_place(e, prev, exp_seq, exp_prev, "modified", f"its seq was changed (to {e.seq})")
        if prev is not None and e.hash == prev.hash:
            self.fail("inserted", e, "a second copy of the record before it")
        if prev is not None and e.seq == prev.seq and e.prev == prev.prev:
            self.fail(
                "inserted",
                prev,
                "not part of the chain: the next record has the same seq and the chain goes on from it",
            )
        assert e.seq is not None
        if e.seq == exp_seq:
            if prev is None:
                self.fail("modified", e, "the first kept record does not link to the chain's start")
            if e.type == chain.CHECKPOINT and not self._signature_holds(e):
                self.fail(
                    "inserted", e, "a checkpoint that does not link to the record before it and was not signed here"
                )
            self.fail("modified", prev, f"altered and its hash recomputed: seq {e.seq} links to a different hash")
        if e.seq < exp_seq:
            self.fail("reordered", e, f"seq {e.seq} appears after seq {exp_seq - 1}")
        if any(a.seq is not None and exp_seq <= a.seq < e.seq for a in ahead):
            self.fail("reordered", e, f"seq {e.seq} appears before seq {exp_seq}")
        n = e.seq - exp_seq
        self.fail("deleted", e, f"{n} record{'s' if n > 1 else ''} missing before it (seq {exp_seq}..{e.seq - 1})")

    def _signature_holds(self, e: Entry) -> bool:
        """Whether a checkpoint's signature verifies for this stream at its place (without failing)."""
        record = e.record or {}
        cp = record.get("checkpoint")
        if not isinstance(cp, dict):
            return False
        signed = {**cp, "seq": e.seq, "time": record.get("time")}
        counter = self.counter
        try:
            self._check_signed_checkpoint(signed, record.get("signature"), None, None)
        except _Found:
            return False
        finally:
            self.counter = counter
        return True

    def _prune_marker(self) -> dict[str, Any] | None:
        try:
            marker = read_strict_json(self.dir / PRUNED)
        except ValueError as exc:
            self.fail("corrupt", None, str(exc), PRUNED)
        if marker is None:
            return None
        key = self.keys.get(str(marker.get("key_id")))
        if key is None:
            self.fail("unknown_key", None, f"signed by {marker.get('key_id')}, not in public-keys/", PRUNED)
        body = {k: v for k, v in marker.items() if k != "signature"}
        try:
            key.verify(chain.unb64(str(marker.get("signature"))), chain.canonical(body))
            int(marker["first_segment"]), int(marker["first_seq"]), str(marker["anchor_prev_hash"])
        except (InvalidSignature, KeyError, TypeError, ValueError):
            self.fail("bad_signature", None, "the prune marker's signature does not verify", PRUNED)
        if marker.get("stream") != self.name:
            self.fail("corrupt", None, "the prune marker belongs to another stream", PRUNED)
        return marker

    def _finish(self, segments: list[tuple[int, Path]]) -> None:
        r = self.result
        if self.manifest_damage is not None:
            raise _Found(self.manifest_damage)
        cp = self.manifest_cp
        last = r.last_seq or 0
        pruned_past = r.pruned_before_seq is not None and int(cp.get("seq") or 0) < r.pruned_before_seq
        if not self.manifest_seen and not pruned_past:
            self.fail(
                "truncated",
                None,
                f"the log ends at seq {last}, but the manifest's signed checkpoint #{cp.get('counter')} "
                f"is at seq {cp.get('seq')} ({segment_name(int(cp.get('segment') or 0))}): seq {last + 1} on are gone",
                self._truncated_at(segments, int(cp.get("segment") or 0)),
                last + 1 if r.last_seq is not None else self.exp_seq,
            )
        if cp.get("sealed") and r.state == "sealed" and cp.get("seq") != last:
            self.fail("appended_after_seal", None, f"the manifest seals the stream at seq {cp.get('seq')}", MANIFEST)
        if self.anchor and self.anchor[0] > last:
            self.fail(
                "truncated",
                None,
                f"the log ends at seq {last}, before the anchored seq {self.anchor[0]}",
                self._truncated_at(segments, 0),
                last + 1,
            )
        if r.state == "sealed":
            return
        if is_live(self.dir):
            r.state = "live"
            return
        r.state = "crashed"
        torn = f"; a torn, never-acknowledged write of {r.torn['bytes']} bytes at the end" if r.torn else ""
        r.warnings.append(
            f"ended without a seal after seq {last} (a crash such as kill -9 or power loss){torn}; "
            f"{r.unsigned_tail} record(s) after the last signed checkpoint (seq {r.last_checkpoint_seq}) "
            "cannot be told apart from a truncation without an external anchor"
        )

    def _truncated_at(self, segments: list[tuple[int, Path]], manifest_segment: int) -> str:
        """The segment that held the first missing record: the one the last record is in, or the next one
        when it is there (emptied) or the manifest places its checkpoint beyond (deleted)."""
        last = self.last_segment or segments[0][0]
        later = [i for i, _ in segments if i > last]
        if later:
            return f"{segment_name(later[0])} (records cut off after seq {self.result.last_seq or 0})"
        if manifest_segment > last:
            return f"{segment_name(last + 1)} (missing, after seq {self.result.last_seq or 0})"
        return f"{segment_name(last)} (ends after seq {self.result.last_seq or 0})"


def _cp(e: Entry) -> dict[str, Any]:
    cp = (e.record or {}).get("checkpoint")
    return cp if isinstance(cp, dict) else {}


def _bool(value: Any) -> bool:
    if not isinstance(value, bool):
        raise TypeError("not a boolean")
    return value


def _torn(e: Entry) -> dict[str, Any]:
    return {"segment": e.segment, "offset": e.offset, "bytes": e.size}


_KEY = re.compile(rb'"((?:[^"\\]|\\.)*)"\s*:')
_RESUME_KEYS = frozenset(
    {"entry_hash", "gateway_version", "node", "pid", "prev_hash", "previous", "seq", "stream", "time", "torn", "type"}
)


def _torn_problem(head: bytes, exp_seq: int, exp_prev: str, stream: str, sealed: bool) -> str | None:
    """Why `head` (the first bytes of a final line without a newline) is not the start of the record the
    writer would have written next, or None if it may be."""
    if not head.startswith(b"{") or (len(head) > 1 and not head.startswith(b'{"')):
        return 'a record starts with `{"`'
    try:
        codecs.getincrementaldecoder("utf-8")().decode(head, final=False)
    except UnicodeDecodeError:
        return "not UTF-8"
    if any(b < 0x20 for b in head):
        return "a control character, which canonical JSON escapes"
    members = _top_level(head)
    keys = [k for k, _ in members]
    if keys != sorted(keys) or len(set(keys)) != len(keys):
        return "keys out of the canonical order"
    values = dict(members)
    if sealed and not set(keys) <= _RESUME_KEYS:
        return "after a seal the next write is a resume record"
    want = {"seq": str(exp_seq).encode(), "prev_hash": f'"{exp_prev}"'.encode(), "stream": f'"{stream}"'.encode()}
    if sealed:
        want["type"] = f'"{chain.STREAM_RESUMED}"'.encode()
    for key, value in want.items():
        got = values.get(key)
        if got is not None and got != value:
            return f"its `{key}` is not the next record's"
    return None


def _top_level(head: bytes) -> list[tuple[str, bytes | None]]:
    """The members of the outer object of a JSON prefix: (key, the value's text if it is complete)."""
    out: list[tuple[str, bytes | None]] = []
    depth, i, n = 0, 0, len(head)
    key: str | None = None
    start = 0
    while i < n:
        c = head[i]
        if c == 0x22:  # a string: skip it (escapes included)
            j = i + 1
            while j < n and head[j] != 0x22:
                j += 2 if head[j] == 0x5C else 1
            if depth == 1 and key is None:
                m = _KEY.match(head, i)
                if m is None:
                    return out
                key = m.group(1).decode("utf-8", "replace")
                i, start = m.end(), m.end()
                out.append((key, None))
                continue
            i = j + 1
            continue
        if c in b"{[":
            depth += 1
        elif c in b"}]":
            depth -= 1
            if depth == 0 and key is not None:
                out[-1] = (key, head[start:i])
                return out
        elif c == 0x2C and depth == 1:  # a comma between members
            if key is not None:
                out[-1] = (key, head[start:i])
            key = None
        i += 1
    return out


__all__ = ["Damage", "Report", "StreamResult", "load_anchor", "verify"]
