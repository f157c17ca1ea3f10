"""The OpenAI Agents SDK (`openai-agents`) on its default path, the Responses API, with one function tool.

The runner sends the question with the tool, gets a function call back, runs the Python function, sends its
output as a `function_call_output` item and gets the final answer: all through owstack's `/v1/responses`, with
the scripted upstream (a vLLM backend) as the model.
"""

from __future__ import annotations

import openai
from agents import Agent, OpenAIProvider, RunConfig, Runner, function_tool
from scripted_world import MODEL, WEATHER, WEATHER_TEXT, observing

from procs import Proc


def test_an_agent_with_one_function_tool_runs_to_its_final_answer(gateway: Proc, scripted: Proc) -> None:
    calls: list[str] = []

    @function_tool
    def get_weather(city: str) -> str:
        """The current weather in a city."""
        calls.append(city)
        return WEATHER

    client = openai.AsyncOpenAI(base_url=gateway.base_url, api_key="sk-test", max_retries=0, timeout=120)
    agent = Agent(name="forecaster", instructions="Answer weather questions.", tools=[get_weather])
    # the default provider with owstack's client: the Responses API, as for any Agent(model="...")
    config = RunConfig(model=MODEL, model_provider=OpenAIProvider(openai_client=client), tracing_disabled=True)
    with observing(scripted, gateway) as seen:
        result = Runner.run_sync(agent, "What is the weather in Paris?", run_config=config)
    assert calls == ["Paris"]
    assert result.final_output == WEATHER_TEXT.format(result=WEATHER)
    assert len(seen.forwarded) == 2 and seen.refused() == []
    assert "Answer weather questions." in str(seen.forwarded[0]["messages"][0])
    assert any(m["role"] == "tool" and m["content"] == WEATHER for m in seen.forwarded[1]["messages"])
