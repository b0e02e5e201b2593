"""LangChain's standard media tests (images as data and by URL, images in tool results, PDFs,
audio, Anthropic-style histories: ``tool_use``, ``source`` images, signed ``thinking`` blocks)
on a ForgeChat whose only deployment is a scripted model that sees, hears and reads.

The standard tests download their image, PDF and audio from the internet; here that download
answers small fixture bytes instead (no network in the unit tier). What they check is that
every block shape they send reaches a model: here, that forge carries it to the deployment as
parts (the scripted backend records the request). The rest of the suite runs against real
servers in the integration tier, so it is not run here.
"""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from forge_core import (
    AudioPart,
    Capabilities,
    FilePart,
    ForgeConfig,
    ImagePart,
    Provider,
    ReasoningPart,
)
from forge_core.testing import ScriptedBackend
from langchain_core.language_models import BaseChatModel
from langchain_forge import ForgeChat
from langchain_tests.integration_tests import ChatModelIntegrationTests
from langchain_tests.integration_tests import chat_models as standard

#: A deployment that takes every part forge carries.
SEES_HEARS_READS = Capabilities(
    tools=True,
    tool_choice=True,
    structured_output=True,
    json_mode=True,
    vision=True,
    image_urls=True,
    audio=True,
    files=True,
    file_urls=True,
)
#: What the standard tests' downloads answer, by the URL's ending.
FIXTURES = {
    ".png": base64.b64decode(
        "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mNk+M9QDwADhgGAWjR9awAAAABJRU5ErkJggg=="
    ),
    ".pdf": b"%PDF-1.4\n%%EOF\n",
    ".wav": b"RIFF$\x00\x00\x00WAVEfmt ",
}
MEDIA_TESTS = frozenset(
    {
        "test_image_inputs",
        "test_image_tool_message",
        "test_pdf_inputs",
        "test_audio_inputs",
        "test_anthropic_inputs",
        "test_no_overrides_DO_NOT_OVERRIDE",
    }
)
NOT_RUN_HERE = pytest.mark.xfail(
    run=False,
    reason="not run on the scripted media route: the standard suite runs against real "
    "servers in the integration tier",
)


class _Download:
    def __init__(self, url: str) -> None:
        self.content = next(data for end, data in FIXTURES.items() if url.endswith(end))


class TestForgeChatMediaStandard(ChatModelIntegrationTests):
    backend: ScriptedBackend

    @pytest.fixture(autouse=True)
    def _offline_downloads(
        self, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
    ) -> Iterator[None]:
        monkeypatch.setattr(standard.httpx, "get", lambda url, **_: _Download(url))
        monkeypatch.setenv("LANGCHAIN_TESTS_USER_AGENT", "forge-tests (offline fixtures)")
        type(self).backend = ScriptedBackend("A red pixel.", capabilities=SEES_HEARS_READS)
        yield
        if request.node.name == "test_no_overrides_DO_NOT_OVERRIDE":
            return
        # Each media test's parts reached the deployment.
        sent = [
            part for call in self.backend.calls for m in call.request.messages for part in m.parts
        ]
        assert any(isinstance(part, ImagePart | AudioPart | FilePart) for part in sent)
        if request.node.name == "test_anthropic_inputs":
            _anthropic_history_arrived(self.backend)

    @property
    def chat_model_class(self) -> type[BaseChatModel]:
        return ForgeChat

    @property
    def chat_model_params(self) -> dict[str, Any]:
        return {
            "model": "openai:scripted-vision",
            "config": ForgeConfig(),
            "backends": {"openai": self.backend},
        }

    @property
    def has_tool_calling(self) -> bool:
        return True

    @property
    def supports_image_inputs(self) -> bool:
        return True

    @property
    def supports_image_urls(self) -> bool:
        return True

    @property
    def supports_image_tool_message(self) -> bool:
        return True

    @property
    def supports_pdf_inputs(self) -> bool:
        return True

    @property
    def supports_audio_inputs(self) -> bool:
        return True

    @property
    def supports_anthropic_inputs(self) -> bool:
        return True


def _anthropic_history_arrived(backend: ScriptedBackend) -> None:
    """What `test_anthropic_inputs` sent reached the deployment as forge's parts: the
    Anthropic-format tool, the ``tool_use`` call and its result, the ``source`` image, and the
    signed ``thinking`` block as an Anthropic `ReasoningPart` (sent back to Anthropic as is)."""
    tools_call, thinking_call = (call.request for call in backend.calls)
    assert [tool["function"]["name"] for tool in tools_call.tools or []] == ["color_picker"]
    roles = [message.role for message in tools_call.messages]
    assert roles == ["system", "user", "assistant", "tool"]
    user, assistant, tool = tools_call.messages[1:]
    assert any(isinstance(part, ImagePart) for part in user.parts)
    assert [(call.id, call.name) for call in assistant.tool_calls or []] == [
        ("foo", "color_picker")
    ]
    assert tool.tool_call_id == "foo"
    thought = [part for part in thinking_call.messages[1].parts if isinstance(part, ReasoningPart)]
    assert [(part.provider, bool(part.signature)) for part in thought] == [
        (Provider.ANTHROPIC, True)
    ]


def _not_run(test: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(test)
    def skipped(*args: Any, **kwargs: Any) -> Any:
        return test(*args, **kwargs)

    return NOT_RUN_HERE(skipped)  # type: ignore[no-any-return]


for _name in dir(ChatModelIntegrationTests):
    if _name.startswith("test_") and _name not in MEDIA_TESTS:
        setattr(
            TestForgeChatMediaStandard,
            _name,
            _not_run(getattr(ChatModelIntegrationTests, _name)),
        )
