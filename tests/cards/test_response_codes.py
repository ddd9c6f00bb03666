"""Every ISO 8583 response code cardcore answers with comes from one table (`ResponseCode`): no
module writes a code as a literal where a decision, a transaction or an answer gets one."""

import ast
import json
from pathlib import Path

from cardcore.cards.controls import Decision
from cardcore.cards.lifecycle import LOCK_REASONS
from cardcore.cards.response_codes import ResponseCode

SOURCES = Path(__file__).resolve().parents[2] / "src" / "cardcore"


def _literal_codes(tree: ast.AST) -> list[int]:
    """Lines where a string literal is given as a response code: the code of a `decline(...)`,
    a value assigned to `….response_code`, or a `"response_code"` entry of a dict or tuple."""
    found = []

    def literal(node: ast.AST | None) -> bool:
        if isinstance(node, ast.Tuple):
            return bool(node.elts) and literal(node.elts[0])
        return isinstance(node, ast.Constant) and isinstance(node.value, str)

    for node in ast.walk(tree):
        if isinstance(node, ast.Call):
            name = node.func.attr if isinstance(node.func, ast.Attribute) else None
            if name == "decline" and node.args and literal(node.args[0]):
                found.append(node.lineno)
            for keyword in node.keywords:
                if keyword.arg in ("response_code", "decline") and literal(keyword.value):
                    found.append(node.lineno)
        elif isinstance(node, ast.Assign):
            for target in node.targets:
                targets = target.elts if isinstance(target, ast.Tuple) else [target]
                values = node.value.elts if isinstance(node.value, ast.Tuple) else [node.value]
                for one, value in zip(targets, values, strict=False):
                    named = isinstance(one, ast.Attribute) and one.attr == "response_code"
                    keyed = (
                        isinstance(one, ast.Subscript)
                        and isinstance(one.slice, ast.Constant)
                        and one.slice.value == "response_code"
                    )
                    if (named or keyed or (isinstance(one, ast.Name) and one.id == "decline")) and (
                        literal(value)
                    ):
                        found.append(node.lineno)
        elif isinstance(node, ast.Dict):
            for key, value in zip(node.keys, node.values, strict=True):
                if (
                    isinstance(key, ast.Constant)
                    and key.value == "response_code"
                    and literal(value)
                ):
                    found.append(node.lineno)
    return found


def test_no_module_writes_a_response_code_as_a_literal() -> None:
    offenders = {
        str(path.relative_to(SOURCES)): lines
        for path in sorted(SOURCES.rglob("*.py"))
        if path.name != "response_codes.py"
        and (lines := _literal_codes(ast.parse(path.read_text(), str(path))))
    }
    assert offenders == {}, f"response codes written as literals (use ResponseCode): {offenders}"


def test_the_check_finds_a_literal_code() -> None:
    """The scan above would see each way a code used to be written."""
    source = """
Decision.decline("51", "INSUFFICIENT_FUNDS")
row.response_code = "00"
row.status, row.response_code = "PENDING", "00"
decline = ("12", "NO_FX_RATE")
answer = {"response_code": "00"}
response["response_code"], response["decline_reason"] = ("51", "X")
"""
    assert sorted(_literal_codes(ast.parse(source))) == [2, 3, 4, 5, 6, 7]


def test_codes_serialize_as_their_two_characters() -> None:
    """Stored answers and retransmissions carry the code itself, as before the enum."""
    decision = Decision.decline(ResponseCode.INSUFFICIENT_FUNDS, "INSUFFICIENT_FUNDS")
    assert decision.response_code == "51"
    assert json.dumps({"response_code": decision.response_code}) == '{"response_code": "51"}'
    assert f"{ResponseCode.CVV2_MISMATCH}" == "N7"
    assert {reason.iso_response for reason in LOCK_REASONS.values()} <= set(ResponseCode)
