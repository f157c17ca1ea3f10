"""The Responses API through the whole gateway in process, driven by the official `openai` SDK."""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

import openai
import orjson
import pydantic
import pytest

from fakes.backend import Reply
from owstack.errors import InvalidRequest, ServiceUnavailable, UpstreamError
from protocols.conftest import App, gateway

pytestmark = pytest.mark.anyio


def sdk(app: App) -> openai.AsyncOpenAI:
    return openai.AsyncOpenAI(base_url="http://127.0.0.1/v1", api_key="x", http_client=app.sdk_http, max_retries=0)


async def test_text_input_instructions_and_usage(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="Bonjour", usage=(21, 3))]) as app:
        r = await sdk(app).responses.create(
            model="edge",
            instructions="Answer in French.",
            input=[
                {"role": "developer", "content": "Be brief."},
                {"role": "user", "content": [{"type": "input_text", "text": "Hello"}]},
            ],
            max_output_tokens=50,
            metadata={"ticket": "42"},
        )
        sent = app.backend.requests[0]
    assert r.status == "completed" and r.output_text == "Bonjour"
    assert r.usage is not None and (r.usage.input_tokens, r.usage.output_tokens, r.usage.total_tokens) == (21, 3, 24)
    assert r.metadata == {"ticket": "42"} and r.instructions == "Answer in French."
    assert r.output[0].type == "message" and r.output[0].id.startswith("msg_")
    # instructions and leading developer messages become one system message, first
    assert sent.messages == [
        {"role": "system", "content": "Answer in French.\n\nBe brief."},
        {"role": "user", "content": [{"type": "text", "text": "Hello"}]},
    ]
    assert sent.params["max_tokens"] == 50


async def test_stream_events_in_order_with_the_final_ids(tmp_path: Path) -> None:
    reply = Reply(reasoning="think hard", text="The answer is 4.", calls=[("add", {"a": 2, "b": 2})])
    async with gateway(tmp_path, [reply]) as app:
        events = [e async for e in await sdk(app).responses.create(model="edge", input="2+2?", stream=True)]
    kinds = [e.type for e in events]
    assert kinds[:2] == ["response.created", "response.in_progress"]
    assert kinds[-1] == "response.completed"
    assert [e.sequence_number for e in events] == list(range(len(events)))
    final = events[-1].response  # type: ignore[union-attr]
    added = [e.item for e in events if e.type == "response.output_item.added"]  # type: ignore[union-attr]
    done = [e.item for e in events if e.type == "response.output_item.done"]  # type: ignore[union-attr]
    assert [i.id for i in added] == [i.id for i in done] == [i.id for i in final.output]
    assert [i.type for i in final.output] == ["reasoning", "message", "function_call"]
    # each item's own events come between its added and its done
    first_item = kinds[kinds.index("response.output_item.added") : kinds.index("response.output_item.done") + 1]
    assert first_item[1:-2] == ["response.reasoning_text.delta"] * 3  # "think hard" in 4-character deltas
    assert first_item[-2] == "response.reasoning_text.done"
    text_events = [k for k in kinds if k.startswith(("response.content_part", "response.output_text"))]
    assert text_events[0] == "response.content_part.added" and text_events[-1] == "response.content_part.done"
    assert "response.output_text.done" in text_events
    args = "".join(e.delta for e in events if e.type == "response.function_call_arguments.delta")  # type: ignore[union-attr]
    assert orjson.loads(args) == {"a": 2, "b": 2}
    assert kinds.index("response.function_call_arguments.done") < kinds.index("response.completed")
    assert final.output[1].content[0].text == "The answer is 4."  # type: ignore[union-attr]


async def test_function_tool_round_trip(tmp_path: Path) -> None:
    replies = [Reply(calls=[("get_weather", {"city": "Paris"})]), Reply(text="It is sunny.")]
    tools: Any = [
        {"type": "function", "name": "get_weather", "description": "Weather", "parameters": {"type": "object"}},
    ]
    async with gateway(tmp_path, replies) as app:
        client = sdk(app)
        first = await client.responses.create(model="coding", input="Weather in Paris?", tools=tools, store=False)
        call = first.output[0]
        assert call.type == "function_call" and call.name == "get_weather"
        assert orjson.loads(call.arguments) == {"city": "Paris"}
        second = await client.responses.create(
            model="coding",
            input=[
                {"role": "user", "content": "Weather in Paris?"},
                {"type": "function_call", "call_id": call.call_id, "name": call.name, "arguments": call.arguments},
                {"type": "function_call_output", "call_id": call.call_id, "output": "sunny, 24C"},
            ],
            tools=tools,
            store=False,
        )
        sent = app.backend.requests[1]
    assert second.output_text == "It is sunny."
    assert sent.params["tools"][0]["function"]["name"] == "get_weather"
    assert sent.messages[1]["tool_calls"][0]["id"] == call.call_id
    assert sent.messages[2] == {"role": "tool", "tool_call_id": call.call_id, "content": "sunny, 24C"}


async def test_namespace_and_custom_tools_map_back(tmp_path: Path) -> None:
    replies = [Reply(calls=[("agents__spawn", {"task": "x"})]), Reply(calls=[("apply_patch", {"input": "*** Begin"})])]
    tools: Any = [
        {"type": "namespace", "name": "agents", "description": "d", "tools": [{"type": "function", "name": "spawn"}]},
        {"type": "custom", "name": "apply_patch", "description": "Patch files"},
    ]
    async with gateway(tmp_path, replies) as app:
        raw = await app.client.post("/v1/responses", json={"model": "coding", "input": "go", "tools": tools})
        ns_call = raw.json()["output"][0]
        raw = await app.client.post("/v1/responses", json={"model": "coding", "input": "go", "tools": tools})
        custom = raw.json()["output"][0]
    assert (ns_call["type"], ns_call["name"], ns_call["namespace"]) == ("function_call", "spawn", "agents")
    assert (custom["type"], custom["name"], custom["input"]) == ("custom_tool_call", "apply_patch", "*** Begin")


async def test_previous_response_id_continues_the_stored_conversation(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="Hi Ada."), Reply(text="Your name is Ada.")]) as app:
        client = sdk(app)
        first = await client.responses.create(model="edge", input="I am Ada.")
        second = await client.responses.create(model="edge", input="My name?", previous_response_id=first.id)
        sent = app.backend.requests[1].messages
        got = await client.responses.retrieve(first.id)
        items = await client.responses.input_items.list(second.id, order="asc")
        deleted = await client.responses.delete(first.id)
        with pytest.raises(openai.NotFoundError):
            await client.responses.retrieve(first.id)
        with pytest.raises(openai.BadRequestError) as info:
            await client.responses.create(model="edge", input="again", previous_response_id=first.id)
    assert [m["role"] for m in sent] == ["user", "assistant", "user"]
    assert sent[1]["content"] == "Hi Ada." and second.previous_response_id == first.id
    assert got.id == first.id and got.output_text == "Hi Ada."
    assert [i.type for i in items.data] == ["message", "message", "message"]
    assert deleted is None or getattr(deleted, "deleted", True)
    assert info.value.body["param"] == "previous_response_id"  # type: ignore[index]


async def test_store_false_is_not_kept(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        r = await sdk(app).responses.create(model="edge", input="hi", store=False)
        with pytest.raises(openai.NotFoundError):
            await sdk(app).responses.retrieve(r.id)
    assert r.store is False


async def test_structured_output_reaches_the_engine_and_parses(tmp_path: Path) -> None:
    class City(pydantic.BaseModel):
        name: str
        population: int

    async with gateway(tmp_path, [Reply(text='{"name": "Paris", "population": 2100000}')]) as app:
        parsed = await sdk(app).responses.parse(model="edge", input="Biggest French city?", text_format=City)
        sent = app.backend.requests[0].params["response_format"]
    assert parsed.output_parsed == City(name="Paris", population=2100000)
    assert sent["type"] == "json_schema" and sent["json_schema"]["schema"]["required"] == ["name", "population"]


async def test_reasoning_effort_and_items_round_trip(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(reasoning="step by step", text="4"), Reply(text="ok")]) as app:
        client = sdk(app)
        first = await client.responses.create(
            model="edge", input="2+2", reasoning={"effort": "low"}, include=["reasoning.encrypted_content"], store=False
        )
        policy = app.backend.requests[0].reasoning
        item = first.output[0]
        assert item.type == "reasoning" and item.encrypted_content
        await client.responses.create(
            model="edge",
            input=[
                {"role": "user", "content": "2+2"},
                {"type": "reasoning", "id": item.id, "summary": [], "encrypted_content": item.encrypted_content},
                {"role": "assistant", "content": "4"},
                {"role": "user", "content": "and 3+3?"},
            ],
            reasoning={"effort": "none"},
            store=False,
        )
        again = app.backend.requests[1]
    assert str(policy) == "budget:1024"
    assert str(again.reasoning) == "off"
    assert again.messages[1] == {"role": "assistant", "content": "4", "reasoning_content": "step by step"}


async def test_length_is_incomplete(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="cut", finish="length")]) as app:
        r = await sdk(app).responses.create(model="edge", input="long story", max_output_tokens=3)
    assert r.status == "incomplete" and r.incomplete_details is not None
    assert r.incomplete_details.reason == "max_output_tokens"


@pytest.mark.parametrize("tool", ["web_search", "file_search", "computer_use_preview", "code_interpreter", "mcp"])
async def test_built_in_tools_are_refused_by_name(tmp_path: Path, tool: str) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        r = await app.client.post("/v1/responses", json={"model": "edge", "input": "x", "tools": [{"type": tool}]})
    assert r.status_code == 400
    error = r.json()["error"]
    assert tool in error["message"] and error["code"] == "unsupported_tool" and error["param"] == "tools[0].type"


async def test_a_stream_that_breaks_ends_with_response_failed(tmp_path: Path) -> None:
    reply = Reply(text="partial", fail_mid_stream=UpstreamError("backend fake dropped the connection"))
    async with gateway(tmp_path, [reply]) as app:
        events = [e async for e in await sdk(app).responses.create(model="edge", input="x", stream=True)]
        outstanding = app.gateway.slots["fake"].outstanding
    assert events[-1].type == "response.failed"
    assert events[-1].response.error is not None and "dropped" in events[-1].response.error.message  # type: ignore[union-attr]
    assert outstanding == 0


async def test_background_response_is_polled_and_cancel_needs_background(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="done later")]) as app:
        client = sdk(app)
        queued = await client.responses.create(model="edge", input="slow job", background=True)
        assert queued.status == "queued" and queued.background is True
        for _ in range(200):
            polled = await client.responses.retrieve(queued.id)
            if polled.status == "completed":
                break
            await asyncio.sleep(0.01)
        plain = await client.responses.create(model="edge", input="x")
        with pytest.raises(openai.BadRequestError):
            await client.responses.cancel(plain.id)
    assert polled.status == "completed" and polled.output_text == "done later"


async def test_a_background_response_refused_after_it_was_queued_fails_as_the_clients_error(tmp_path: Path) -> None:
    """A refusal without a code of its own from a stage after the parse (the backend's check of a forced
    tool's schema, here the fake backend's) came after the background response was queued: the failed
    response said `server_error`. It is the client's error, and says so."""
    refusal = InvalidRequest("function parameters must describe an object (type: object)", param="tools[0]")
    async with gateway(tmp_path, [Reply(error=refusal)]) as app:
        queued = await app.client.post("/v1/responses", json={"model": "edge", "input": "x", "background": True})
        assert queued.status_code == 200, queued.text
        for _ in range(200):
            polled = (await app.client.get(f"/v1/responses/{queued.json()['id']}")).json()
            if polled["status"] not in ("queued", "in_progress"):
                break
            await asyncio.sleep(0.01)
    assert polled["status"] == "failed", polled
    assert polled["error"]["code"] == "invalid_request_error", polled["error"]
    assert "must describe an object" in polled["error"]["message"]


async def test_bad_items_are_400_naming_the_item(tmp_path: Path) -> None:
    async with gateway(tmp_path, [Reply(text="x")]) as app:
        r = await app.client.post(
            "/v1/responses", json={"model": "edge", "input": [{"type": "web_search_call", "id": "ws_1"}]}
        )
        missing = await app.client.post("/v1/responses", json={"input": "no model"})
    assert r.status_code == 400 and r.json()["error"]["param"] == "input[0].type"
    assert missing.status_code == 400 and missing.json()["error"]["param"] == "model"


async def test_only_background_responses_run_a_lease_heartbeat_and_plain_ones_pay_no_store_call(tmp_path: Path) -> None:
    """A plain stored response costs the one write it always did, and starts no heartbeat; a background one
    runs the heartbeat only while it runs (the lease, api/responses.py `Background`)."""
    async with gateway(tmp_path, [Reply(text="now"), Reply(text="later")]) as app:
        store, background = app.gateway.protocols.responses.store, app.gateway.background  # type: ignore[attr-defined]
        calls: list[str] = []
        run = store._run

        async def counted(fn: Any, *args: Any) -> Any:
            calls.append(fn.__name__)
            return await run(fn, *args)

        store._run = counted
        plain = await app.client.post("/v1/responses", json={"model": "edge", "input": "x"})
        assert plain.status_code == 200 and calls == ["put"] and background._beat is None
        queued = await app.client.post("/v1/responses", json={"model": "edge", "input": "y", "background": True})
        beat = background._beat
        assert queued.status_code == 200 and beat is not None
        for _ in range(500):
            if not background.tasks and beat.done():
                break
            await asyncio.sleep(0.02)
        polled = (await app.client.get(f"/v1/responses/{queued.json()['id']}")).json()
    assert polled["status"] == "completed" and beat.done() and background._beat is None


def hold(app: App) -> asyncio.Event:
    """The fake backend takes each request, then answers only once the returned event is set."""
    gate, complete = asyncio.Event(), app.backend.complete

    async def held(request: Any) -> Any:
        app.backend.requests.append(request)
        await gate.wait()
        app.backend.requests.pop()
        return await complete(request)

    app.backend.complete = held  # type: ignore[method-assign]
    return gate


async def until(check: Any, what: str, timeout: float = 30.0) -> None:
    for _ in range(int(timeout / 0.02)):
        if await check() if asyncio.iscoroutinefunction(check) else check():
            return
        await asyncio.sleep(0.02)
    raise AssertionError(f"never happened: {what}")


async def test_a_background_response_deleted_while_it_runs_stays_deleted(tmp_path: Path) -> None:
    """The task cancelled by the delete stored `cancelled` after the delete: the row came back."""
    async with gateway(tmp_path, [Reply(text="late")]) as app:
        hold(app)
        queued = await app.client.post("/v1/responses", json={"model": "edge", "input": "y", "background": True})
        rid = queued.json()["id"]
        await until(lambda: app.backend.requests, "the backend has the request")
        assert (await app.client.delete(f"/v1/responses/{rid}")).status_code == 200
        await until(lambda: not app.gateway.background.tasks, "the task ended")
        assert (await app.client.get(f"/v1/responses/{rid}")).status_code == 404


async def test_an_owner_cut_off_for_a_whole_lease_is_failed_by_a_reader_and_stops_its_task(tmp_path: Path) -> None:
    """Two gateways on one database, a 1 s lease. The owner's heartbeat fails (its database is out of reach):
    the other reads the response `failed` once the lease has run out, and stores it so; when the owner's
    heartbeat is back it learns its lease was revoked and stops the task, whose outcome is never stored."""
    lease = {"responses": {"background_lease_s": 1}}
    async with gateway(tmp_path, [Reply(text="late")], **lease) as owner, gateway(tmp_path, [], **lease) as other:
        gate = hold(owner)
        store = owner.gateway.protocols.responses.store  # type: ignore[attr-defined]
        beat = store.heartbeat

        async def cut_off(ids: list[str]) -> Any:
            raise ServiceUnavailable("the response store is unavailable: injected", code="store_unavailable")

        store.heartbeat = cut_off
        queued = await owner.client.post("/v1/responses", json={"model": "edge", "input": "y", "background": True})
        rid = queued.json()["id"]

        async def lapsed() -> bool:
            return bool((await other.client.get(f"/v1/responses/{rid}")).json()["status"] == "failed")

        await until(lapsed, "the other gateway reads it failed")
        store.heartbeat = beat
        await until(lambda: not owner.gateway.background.tasks, "the owner stopped its task")
        gate.set()
        failed = (await owner.client.get(f"/v1/responses/{rid}")).json()
    assert failed["status"] == "failed" and failed["error"]["code"] == "server_error", failed
    assert "stopped before it finished" in failed["error"]["message"]
