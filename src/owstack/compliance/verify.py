"""`owstack audit verify`: check every stream's chain, checkpoints, manifest and prune marker.

The kinds of damage reported (the first one found per stream):

    modified            a record's content no longer matches its hash, or it was altered and its hash
                        recomputed (the next record links to the old hash), or the chain after it was
                        rewritten (named through the signed `covers` list of the next checkpoint), or its
                        line is not the canonical form the writer wrote (a duplicate key that parsers
                        read differently, reordered keys)
    deleted             records missing inside the chain (a sequence gap)
    segment_missing     a segment file missing (at the start without a signed prune marker, or in between)
    reordered           records out of order
    inserted            a record that is not part of the chain
    truncated           the log ends before a checkpoint the manifest (or an external anchor) vouches for
    bad_signature       a checkpoint, manifest or prune marker whose Ed25519 signature does not verify
    checkpoint_counter  a gap or repeat in the checkpoint counter
    unknown_key         signed by a key not stored with the log (or not among --trusted-key)
    appended_after_seal records after a stream's sealing checkpoint: with no resume record, or with a
                        resume record that the writer's signed checkpoint does not follow at once (a
                        writer always signs a checkpoint in the same write as its resume record)
    corrupt             a line that is not a record, a torn record inside the stream, an unreadable manifest
    rewritten           a record at an anchored sequence number with a different hash
    manifest_missing    segments without a manifest
    stream_missing      an anchored stream that is gone, or no stream left although writers published
                        signing keys (every stream deleted)
    log_missing         no audit log at all where one was expected (no streams, no keys, and no
                        top-level manifest.json saying `"streams": []`)

A stream that ends without a seal and is not held by a live writer ended in a crash (kill -9, power
loss): that is reported as a warning, not damage, because from the log alone it cannot be told apart from
a truncation after the last signed checkpoint. See docs/compliance.md, "What truncation can be detected".
"""

from __future__ import annotations

import itertools
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
    read_json,
    segment_name,
)

LOOKAHEAD = 64


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
    for stream_dir in list_streams(directory) if directory.is_dir() else []:
        names.add(stream_dir.name)
        check = _StreamCheck(stream_dir, keys, anchors.get(stream_dir.name), trusted_keys)
        report.streams.append(check.run())
    for name in sorted(set(anchors) - names):
        report.missing.append(Damage("stream_missing", name, "streams/", None, "an anchored stream is gone"))
    if not report.damage and not any(s.records for s in report.streams):
        empty = _empty_log(directory, keys)
        if empty is not None:
            report.missing.append(empty)
    return report


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
        manifest = read_json(directory / MANIFEST) if directory.is_dir() else None
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
        self.since_cp: list[Entry] = []  # the records since the last checkpoint (that checkpoint first)
        self.resume: Entry | None = None  # a resume record not yet followed by its writer's checkpoint
        self.resume_after_seal = False

    def run(self) -> StreamResult:
        try:
            self._run()
        except _Found as found:
            self.result.damage = found.damage
        return self.result

    def fail(self, kind: str, entry: Entry | None, message: str, where: str | None = None) -> NoReturn:
        place = where or (entry.where if entry else "stream")
        raise _Found(Damage(kind, self.name, place, entry.seq if entry else None, message))

    def _run(self) -> None:
        segments = list_segments(self.dir)
        try:
            manifest = read_strict_json(self.dir / MANIFEST)
        except ValueError as exc:
            self.fail("corrupt", None, str(exc), MANIFEST)
        if not segments and manifest is None:
            return
        if manifest is None:
            self.fail("manifest_missing", None, "segments but no manifest.json (deleted?)", MANIFEST)
        self.manifest_cp = manifest.get("checkpoint") or {}
        self._check_signed_checkpoint(self.manifest_cp, self.manifest_cp.get("signature"), None, MANIFEST)
        exp_seq, exp_prev, first_index = 1, chain.genesis_hash(self.name), 1
        marker = self._prune_marker()
        if marker is not None:
            first_index = int(marker["first_segment"])
            segments = [(i, p) for i, p in segments if i >= first_index]
            exp_seq, exp_prev = int(marker["first_seq"]), str(marker["anchor_prev_hash"])
            self.result.pruned_before_seq = exp_seq
        self._check_segment_set(segments, first_index)
        self._walk(segments, exp_seq, exp_prev)
        self._finish()

    def _check_segment_set(self, segments: list[tuple[int, Path]], first_index: int) -> None:
        if not segments:
            self.fail("truncated", None, "every segment is gone but the manifest names a checkpoint", MANIFEST)
        if segments[0][0] != first_index:
            missing = ", ".join(segment_name(i) for i in range(first_index, segments[0][0]))
            self.fail("segment_missing", None, f"{missing} missing and no signed prune marker covers it", missing)
        for (a, _), (b, _) in itertools.pairwise(segments):
            if b != a + 1:
                missing = ", ".join(segment_name(i) for i in range(a + 1, b))
                self.fail(
                    "segment_missing",
                    None,
                    f"{missing} missing between {segment_name(a)} and {segment_name(b)}",
                    missing,
                )

    def _walk(self, segments: list[tuple[int, Path]], exp_seq: int, exp_prev: str) -> None:
        la = Lookahead(entries(segments))
        last_index = segments[-1][0]
        prev: Entry | None = None
        torn: dict[str, Any] | None = None
        sealed = False
        for e in la:
            if e.state == "torn":
                torn = {"segment": e.segment, "offset": e.offset, "bytes": e.size}
                if e.segment == last_index:
                    self.result.torn = torn
                continue
            if e.state == "corrupt":
                self.fail("corrupt", e, "not a JSON audit record")
            if torn is not None and (e.type != chain.STREAM_RESUMED or (e.record or {}).get("torn") != torn):
                self.fail(
                    "corrupt",
                    e,
                    f"a torn record at {segment_name(torn['segment'])} offset {torn['offset']} "
                    "that no resume record accounts for",
                )
            if e.state == "edited":
                self.fail("modified", e, e.problem)
            if not e.hash_ok:
                self.fail("modified", e, "its content does not match its entry hash")
            if e.seq != exp_seq or e.prev != exp_prev:
                self._classify(e, la, prev, exp_seq, exp_prev)
            self._check_resume_order(e, sealed)
            self._check_entry(e, prev, torn, sealed)
            sealed = e.type == chain.CHECKPOINT and bool((e.record or {}).get("checkpoint", {}).get("sealed"))
            torn = None
            exp_seq, exp_prev, prev = e.seq + 1 if e.seq is not None else exp_seq, e.hash, e
        if self.resume is not None:
            self.result.warnings.append(
                f"the stream ends with a resume record ({self.resume.where}) and not the checkpoint its writer "
                "signs with it: a crash while the writer was opening the stream"
            )
        self.result.state = "sealed" if sealed else "open"

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

    def _check_entry(self, e: Entry, prev: Entry | None, torn: dict[str, Any] | None, sealed: bool) -> None:
        r = self.result
        r.records += 1
        if r.first_seq is None:
            r.first_seq, r.first_time = e.seq, e.time
        r.last_seq, r.last_hash, r.last_time = e.seq, e.hash, e.time or r.last_time
        r.unsigned_tail += 1
        if self.anchor and e.seq == self.anchor[0] and e.hash != self.anchor[1]:
            self.fail("rewritten", e, "the record at the anchored sequence number has a different hash")
        if e.seq == self.manifest_cp.get("seq"):
            if e.hash != self.manifest_cp.get("entry_hash"):
                self.fail("rewritten", e, "the manifest's signed checkpoint has a different hash here")
            self.manifest_seen = True
        if e.type == chain.CHECKPOINT:
            self._checkpoint(e)
            r.checkpoints += 1
            r.last_checkpoint_seq = e.seq
            r.unsigned_tail = 0
            self.since_cp = [e]
            return
        self.since_cp.append(e)
        if e.type == chain.STREAM_RESUMED:
            assert e.record is not None
            previous = e.record.get("previous") or {}
            if prev is not None and (previous.get("seq") != prev.seq or previous.get("entry_hash") != prev.hash):
                self.fail("modified", e, "the resume record names a different end of the previous run")
            if prev is not None and bool(previous.get("sealed")) != sealed:
                self.fail("modified", e, "the resume record misstates whether the previous run was sealed")
            if torn is None and e.record.get("torn"):
                self.fail("modified", e, "the resume record declares a torn record that is not there")

    def _checkpoint(self, e: Entry) -> None:
        assert e.record is not None
        cp = e.record.get("checkpoint") or {}
        covers = cp.get("covers")
        signed = {**cp, "seq": e.seq, "time": e.record.get("time")}
        if covers is not None:
            if not isinstance(covers, list) or not all(isinstance(c, str) for c in covers):
                self.fail("modified", e, "the checkpoint's `covers` list is malformed")
            signed["covers"] = chain.covers_digest(covers)
        self._check_signed_checkpoint(signed, e.record.get("signature"), e, None)
        if cp.get("head_hash") == e.prev:
            return
        if covers:  # the chain before it was rewritten: the signed list names the first altered record
            covered = self.since_cp[-len(covers) :] if len(self.since_cp) >= len(covers) else self.since_cp
            for want, got in zip(covers[-len(covered) :], covered, strict=False):
                if chain.cover(got.hash) != want:
                    self.fail(
                        "modified",
                        got,
                        f"altered and the chain after it rewritten: signed checkpoint #{cp.get('counter')} "
                        f"(seq {e.seq}) vouches for a different hash here",
                    )
        self.fail("bad_signature", e, "the checkpoint vouches for a head that is not the record before it")

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
                sealed=bool(cp["sealed"]),
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
            self.fail("modified", prev, f"altered and its hash recomputed: seq {e.seq} links to a different hash")
        if e.seq < exp_seq:
            self.fail("reordered", e, f"seq {e.seq} appears after seq {exp_seq - 1}")
        if any(a.seq is not None and exp_seq <= a.seq < e.seq for a in ahead):
            self.fail("reordered", e, f"seq {e.seq} appears before seq {exp_seq}")
        n = e.seq - exp_seq
        self.fail("deleted", e, f"{n} record{'s' if n > 1 else ''} missing before it (seq {exp_seq}..{e.seq - 1})")

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

    def _finish(self) -> None:
        r = self.result
        cp = self.manifest_cp
        last = r.last_seq or 0
        pruned_past = r.pruned_before_seq is not None and int(cp.get("seq") or 0) < r.pruned_before_seq
        if not self.manifest_seen and not pruned_past:
            self.fail(
                "truncated",
                None,
                f"the log ends at seq {last}, but the manifest's signed checkpoint #{cp.get('counter')} "
                f"is at seq {cp.get('seq')}",
                MANIFEST,
            )
        if cp.get("sealed") and r.state == "sealed" and cp.get("seq") != last:
            self.fail("appended_after_seal", None, f"the manifest seals the stream at seq {cp.get('seq')}", MANIFEST)
        if self.anchor and self.anchor[0] > last:
            self.fail("truncated", None, f"the log ends at seq {last}, before the anchored seq {self.anchor[0]}")
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


__all__ = ["Damage", "Report", "StreamResult", "load_anchor", "verify"]
