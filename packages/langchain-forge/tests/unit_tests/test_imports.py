from __future__ import annotations

import langchain_forge
from langchain_core.language_models import BaseChatModel
from langchain_forge import ForgeChat

EXPECTED_ALL = ["ForgeChat", "ForgeEmbeddings"]


def test_all_imports() -> None:
    assert sorted(langchain_forge.__all__) == sorted(EXPECTED_ALL)
    for name in langchain_forge.__all__:
        assert getattr(langchain_forge, name) is not None


def test_forge_chat_is_a_langchain_chat_model() -> None:
    assert issubclass(ForgeChat, BaseChatModel)
