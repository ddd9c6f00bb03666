from pathlib import Path

from cardcore.config import Settings

README = (Path(__file__).resolve().parents[1] / "README.md").read_text()


def test_readme_documents_every_setting() -> None:
    missing = [
        f"CARDCORE_{name.upper()}"
        for name in Settings.model_fields
        if f"`CARDCORE_{name.upper()}`" not in README
        and f"`CARDCORE_{name.upper()}`," not in README
    ]
    assert missing == []


def test_readme_states_the_two_commands() -> None:
    assert "make run" in README
    assert "make test" in README
