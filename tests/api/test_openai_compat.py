"""The official `openai` SDK against `/v1`: same auth, same billing, OpenAI shapes and errors."""

from collections.abc import AsyncIterator

import httpx
import openai
import pytest
from litestar import Litestar

from domain.credits import Credits
from domain.pricing import Pricing, Usage
from entrypoints.settings import Settings
from tests.support.api import admin_token, bearer, client_token
from tests.support.servers import serve_on_loopback

HELLO = [{"role": "user", "content": "Say hello"}]
DR14 = Pricing(100, Credits.whole(20), Credits.whole(20))
GEMINI_FLASH = Pricing(100, Credits.whole(1), Credits.whole(1))


@pytest.fixture
async def base_url(app: Litestar) -> AsyncIterator[str]:
    async with serve_on_loopback(app) as url:
        yield url


async def _sdk(base_url: str, settings: Settings, username: str, amount: str | None = "50") -> openai.AsyncOpenAI:
    async with httpx.AsyncClient(base_url=base_url) as http:
        token = await client_token(http, username)
        if amount is not None:
            admin = await admin_token(http, settings, username=f"{username}-admin")
            user_id = (await http.get("/api/v1/me", headers=bearer(token))).json()["id"]
            await http.post(
                f"/api/v1/admin/users/{user_id}/balance", json={"amount": amount, "reason": "t"}, headers=bearer(admin)
            )
    return openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key=token, max_retries=0)


async def test_models_are_listed_in_openai_shape(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk1", amount=None)
    models = [model.id async for model in sdk.models.list()]
    assert {"dr14", "gemini-flash"} <= set(models)


async def test_a_non_streaming_completion(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk2")
    completion = await sdk.chat.completions.create(model="dr14", messages=HELLO, max_tokens=7)  # type: ignore[arg-type]
    assert completion.object == "chat.completion"
    assert completion.choices[0].message.role == "assistant"
    assert completion.choices[0].message.content
    assert completion.choices[0].finish_reason == "length"
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 7
    assert completion.usage.total_tokens == completion.usage.prompt_tokens + 7
    assert completion.usage.prompt_tokens_details is not None
    assert completion.usage.prompt_tokens_details.cached_tokens == 0
    assert completion.usage.completion_tokens_details is not None
    assert completion.usage.completion_tokens_details.reasoning_tokens == 0
    # dr14: 100 tokens = 20 credits; the billed cost, as a decimal string
    assert (completion.usage.model_extra or {})["cost"] == str(DR14.cost(Usage(completion.usage.prompt_tokens, 7)))


async def test_a_streaming_completion_with_usage(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk3")
    stream = await sdk.chat.completions.create(
        model="gemini-flash",
        messages=HELLO,  # type: ignore[arg-type]
        max_completion_tokens=6,
        stream=True,
        stream_options={"include_usage": True},
    )
    chunks = [chunk async for chunk in stream]
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text
    assert [c.choices[0].finish_reason for c in chunks if c.choices][-1] == "length"
    usage = chunks[-1].usage
    assert usage is not None
    assert usage.completion_tokens == 6
    assert (usage.model_extra or {})["cost"] == str(GEMINI_FLASH.cost(Usage(usage.prompt_tokens, 6)))


async def test_no_balance_is_an_openai_style_error(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk4", amount=None)
    with pytest.raises(openai.APIStatusError) as raised:
        await sdk.chat.completions.create(model="dr14", messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.status_code == 402
    assert raised.value.body == {
        "message": "The balance does not cover this request.",
        "type": "insufficient_quota",
        "code": "insufficient_balance",
    }


async def test_a_bad_token_and_an_unknown_model_are_openai_errors(base_url: str, settings: Settings) -> None:
    anonymous = openai.AsyncOpenAI(base_url=f"{base_url}/v1", api_key="not-a-token", max_retries=0)
    with pytest.raises(openai.AuthenticationError):
        await anonymous.chat.completions.create(model="dr14", messages=HELLO)  # type: ignore[arg-type]
    sdk = await _sdk(base_url, settings, "sdk5")
    with pytest.raises(openai.NotFoundError) as raised:
        await sdk.chat.completions.create(model="nope", messages=HELLO)  # type: ignore[arg-type]
    assert raised.value.code == "model_not_found"


async def test_unknown_openai_fields_are_tolerated(base_url: str, settings: Settings) -> None:
    sdk = await _sdk(base_url, settings, "sdk6")
    completion = await sdk.chat.completions.create(
        model="dr14",
        messages=[{"role": "developer", "content": "Be brief"}, *HELLO],  # type: ignore[list-item]
        max_tokens=3,
        user="someone",
        seed=4,
        n=1,
    )
    assert completion.usage is not None
    assert completion.usage.completion_tokens == 3
