r"""MathVision (lmms-eval tasks ``mathvision_testmini`` / ``mathvision_test``): rule-based standard eval.

A faithful port of lmms-eval's ``mathvision_process_results`` and its ``eval_utils`` (answer extraction
from ``\boxed{}``/"the answer is", LaTeX normalisation, option letters and option texts, numeric
comparison at 2 decimals through ``latex2sympy``).

Harness versions: the value of a LaTeX answer is ``eval(str(latex2sympy(x)))``. In lmms-eval 0.5 (vendored
by the official repository, the default here) that ``eval`` runs with ``from math import *`` in scope, so
``\sqrt{2}``, ``\pi``, ``e``, ``\log``, ``\sin`` ... have values and an option given as its LaTeX text
(``\frac{\sqrt{3}}{2}``) matches the gold option; lmms-eval 0.7.3 dropped that import and every such
name raises NameError there (no value, no match): ``harness="0.7.3"``.

Two deliberate differences from both, only on pathological input: the printed expression is computed by a
small evaluator (numbers, arithmetic, and for 0.5 the ``math`` module's names) instead of Python's
``eval``, and huge powers or factorials count as no value instead of hanging.
"""

from __future__ import annotations

import ast
import math
import operator
import re



def build_prompt(doc: dict) -> str:
    question, options = doc["question"], list(doc.get("options") or [])
    prompt = 'Please solve the problem step by step and put your answer in one "\\boxed{}".'
    choices = "\n".join(f"{chr(65 + i)}. {c}" for i, c in enumerate(options))
    if choices:
        return prompt + f"{question}\nChoices: {choices}" + "\nAnswer the question with the option's letter from the given choices directly."
    return prompt + question


# --- numeric value of a LaTeX string (latex2sympy, then a safe evaluator of its printed form) ---------
_OPS = {ast.Add: operator.add, ast.Sub: operator.sub, ast.Mult: operator.mul, ast.Div: operator.truediv,
        ast.FloorDiv: operator.floordiv, ast.Mod: operator.mod, ast.Pow: operator.pow}


_MATH = {k: v for k, v in vars(math).items() if not k.startswith("_")}
"""What ``from math import *`` puts in scope of lmms-eval 0.5's ``eval``."""
_HUGE_ARGUMENT = {"factorial", "comb", "perm", "gamma", "lgamma", "exp", "ldexp"}


def _arith(node, names: dict):
    if isinstance(node, ast.Expression):
        return _arith(node.body, names)
    if isinstance(node, ast.Constant) and isinstance(node.value, (int, float, bool)):
        return node.value
    if isinstance(node, ast.Name) and node.id in ("True", "False"):
        return node.id == "True"
    if isinstance(node, ast.Name) and isinstance(names.get(node.id), (int, float)):
        return names[node.id]
    if isinstance(node, ast.UnaryOp) and isinstance(node.op, (ast.USub, ast.UAdd)):
        v = _arith(node.operand, names)
        return -v if isinstance(node.op, ast.USub) else +v
    if isinstance(node, ast.BinOp) and type(node.op) in _OPS:
        a, b = _arith(node.left, names), _arith(node.right, names)
        if isinstance(node.op, ast.Pow) and (abs(b) > 4096 or (abs(a) > 1 and abs(b) * len(str(int(abs(a)))) > 4096)):
            raise OverflowError("power too large")
        return _OPS[type(node.op)](a, b)
    if (isinstance(node, ast.Call) and isinstance(node.func, ast.Name) and callable(names.get(node.func.id))
            and not node.keywords):
        args = [_arith(a, names) for a in node.args]
        if node.func.id in _HUGE_ARGUMENT and any(abs(a) > 4096 for a in args):
            raise OverflowError("argument too large")
        return names[node.func.id](*args)
    raise ValueError("not a plain number")


def latex_value(s: str, harness: str = "0.5"):
    """``eval(str(latex2sympy(s)))`` as the harness evaluates it; raises when there is no plain value.

    ``harness="0.5"``: with the ``math`` module's names in scope; ``"0.7.3"``: numbers and arithmetic only.
    """
    from latex2sympy2 import latex2sympy

    printed = str(latex2sympy(s))
    if len(printed) > 2000:
        raise ValueError("expression too long")
    return _arith(ast.parse(printed, mode="eval"), _MATH if harness == "0.5" else {})


# --- lmms-eval eval_utils, ported ----------------------------------------------------------------------
def is_number(s) -> bool:
    try:
        float(s)
        return True
    except (ValueError, TypeError):
        return False


def eval_tuple(s: str, harness: str = "0.5") -> str:
    sl = s[1:-1].split(",")
    try:
        if s[0] == "(" and s[-1] == ")" and len(sl) > 1:
            s = ",".join([str(round(latex_value(sub, harness), 2)) if "infty" not in sub and sub not in ["a", "-a"] else sub for sub in sl])
            return f"({s})"
        elif s[0] == "[" and s[-1] == "]" and len(sl) > 1:
            s = ",".join([str(round(latex_value(sub, harness), 2)) if "infty" not in sub and sub not in ["a", "-a"] else sub for sub in sl])
            return f"[{s}]"
    except Exception:  # noqa: BLE001 - as lmms-eval: any failure keeps the original string
        return s
    return s


def is_equal(asw: str, gt_asw: str, harness: str = "0.5") -> bool:
    asw, gt_asw = asw.lower(), gt_asw.lower()
    if asw.replace(" ", "") == "" or gt_asw.replace(" ", "") == "":
        return False
    if gt_asw.strip() == asw.strip():
        return True
    asw, gt_asw = eval_tuple(asw, harness), eval_tuple(gt_asw, harness)
    if gt_asw == asw:
        return True
    try:
        return round(latex_value(gt_asw, harness), 2) == round(latex_value(asw, harness), 2)
    except Exception:  # noqa: BLE001
        return False


def _fix_fracs(string: str) -> str:
    substrs = string.split("\\frac")
    new_str = substrs[0]
    if len(substrs) > 1:
        for substr in substrs[1:]:
            new_str += "\\frac"
            if len(substr) > 0 and substr[0] == "{":
                new_str += substr
            else:
                if len(substr) < 2:
                    return string
                a, b = substr[0], substr[1]
                if b != "{":
                    new_str += "{" + a + "}{" + b + "}" + substr[2:]
                else:
                    new_str += "{" + a + "}" + b + substr[2:]
    return new_str


def _fix_a_slash_b(string: str) -> str:
    if len(string.split("/")) != 2:
        return string
    a, b = string.split("/")
    try:
        a, b = int(a), int(b)
        if string != "{}/{}".format(a, b):
            return string
        return "\\frac{" + str(a) + "}{" + str(b) + "}"
    except Exception:  # noqa: BLE001
        return string


def _fix_sqrt(string: str) -> str:
    if "\\sqrt" not in string:
        return string
    splits = string.split("\\sqrt")
    new_string = splits[0]
    for split in splits[1:]:
        if len(split) > 0 and split[0] != "{":
            new_string += "\\sqrt{" + split[0] + "}" + split[1:]
        else:
            new_string += "\\sqrt" + split
    return new_string


def _strip_string(string: str) -> str:
    string = string.replace("\n", "").replace("\\!", "").replace("\\\\", "\\")
    string = string.replace("tfrac", "frac").replace("dfrac", "frac")
    string = string.replace("\\left", "").replace("\\right", "")
    string = string.replace("^{\\circ}", "").replace("^\\circ", "")
    string = string.replace("\\$", "").replace("$", "")
    string = string.split("\\text{ ")[0]
    string = string.replace("\\%", "").replace("\\%", "")
    string = string.replace(" .", " 0.").replace("{.", "{0.")
    if len(string) == 0:
        return string
    if string[0] == ".":
        string = "0" + string
    if len(string.split("=")) == 2:
        string = string.split("=")[-1]
    if len(string.split("\\approx")) == 2:
        string = string.split("\\approx")[-1]
    if "sqrt" in string:
        string = _fix_sqrt(string)
    string = string.replace(" ", "")
    if "sqrt" in string:
        string = _fix_fracs(string)
    if string == "0.5":
        string = "\\frac{1}{2}"
    return _fix_a_slash_b(string)


_BOXED = re.compile("oxed{(.*)}", flags=re.S)


def find_math_answer(s: str) -> str:
    s = s.lower()
    if "{}" in s:
        s = s.replace("{}", "")
    found = _BOXED.findall(s)
    ans = found[-1] if found else s
    if ans.find("}") != -1 and (ans.find("{") == -1 or ans.find("}") < ans.find("{")):
        ans = ans.split("}")[0]
    ans = ans.split("=")[-1]
    ans = ans.split("\\approx")[-1]
    ans = ans.replace(" ", "").replace("\\,", "").replace("∞", "\\infty")
    ans = ans.replace("+\\infty", "\\infty").replace("\\\\", "\\").replace("\n", "")
    ans = ans.replace("\\text", "").replace("\\mbox", "").replace("bmatrix", "pmatrix")
    ans = ans.replace("\\left", "").replace("\\right", "").replace("^{\\circ}", "")
    ans = ans.replace("^\\circ", "").replace("{m}^3", "").replace("m^3", "")
    ans = ans.replace("{units}", "").replace("units", "").replace("{km}", "").replace("km", "")
    return _strip_string(ans)


_FLAGS = ["the final answer is", "the answer is", "the correct answer is", "the answer should be"]


def extract(doc: dict, response: str, judge=None) -> str:
    """The answer lmms-eval compares (after its letter, "is …" and ``\\boxed`` handling)."""
    model_answer = str(response).strip()
    for c in "ABCDE":
        if (model_answer.endswith(f" {c}.") or model_answer.endswith(f" ({c}).") or model_answer.startswith(f"{c}\n")
                or model_answer.startswith(f"({c})\n") or model_answer.startswith(f"({c}) {c}\n")):
            model_answer = c
    if is_number(model_answer.split("is ")[-1].rstrip(".")):
        model_answer = model_answer.split("is ")[-1].rstrip(".")
    if "oxed{" not in model_answer:
        for flag in _FLAGS:
            raw = model_answer
            model_answer = model_answer.split(flag)[-1].strip()
            if flag in raw:
                model_answer = model_answer.split("\n")[0].split(". ")[0]
            flag = flag.replace("the", "The")
            raw = model_answer
            model_answer = model_answer.split(flag)[-1].strip()
            if flag in raw:
                model_answer = model_answer.split("\n")[0].split(". ")[0]
    elif model_answer.count("oxed{") > 1:
        model_answer = "\\boxed{" + model_answer.split("oxed{")[-1]
    model_answer = find_math_answer(model_answer)
    for x in "abcde":
        model_answer = model_answer.replace(f"({x})", x)
    for x in "abcde":
        model_answer = model_answer.replace("{" + x + "}", x)
    return model_answer.rstrip(".").lstrip(":").strip()


def score(doc: dict, model_answer: str, judge=None, harness: str = "0.5") -> float:
    gt_answer = str(doc["answer"])
    options = list(doc.get("options") or [])
    try:  # lmms-eval indexes the options by the gold letter
        gt_value = str(options[ord(gt_answer) - ord("A")]) if options else ""
    except (TypeError, IndexError):
        gt_value = ""
    return 1.0 if (is_equal(gt_answer, model_answer, harness) or is_equal(gt_value, model_answer, harness)) else 0.0
