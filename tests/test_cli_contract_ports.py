"""The command line's contract for a port (issue 11): stated refusals, crashes, divergences, nothing to compare with.

Exit codes: 0 behaved, 1 diverged, 2 bad input, 3 a port crashed. A user's port (numpy,
standing in for a torch port: tests/_cli_support.py) misbehaves in each way a port can;
``main()`` runs in this process (no framework start-up). Files, JSON and Ctrl-C:
tests/test_cli_contract_outputs.py; without TensorFlow: tests/test_cli_contract_no_tf.py.
"""

import os

import pytest

from _cli_support import line_of, one_error_line, run_main, strict_json, user_port, validate


# -- refusals -------------------------------------------------------------------------------


def test_every_must_refuse_case_states_its_refusals():
    from parity.cases.registry import all_cases

    for case in all_cases():
        if case.expect == "error":
            missing = [p for p in case.ports if case.expected_refusal(p) is None]
            assert not missing, f"{case.name}: no Refusal stated for {missing}"


def test_refusal_matching():
    from parity.cases.case import Refusal
    from parity.cases.registry import get_case
    from parity.run.result import refusal_matches
    from parity.errors import PortError

    case = get_case("seed004_nothing_to_train")
    right = PortError("torch", "build", ValueError("optimizer got an empty parameter list"))
    assert refusal_matches(case, "torch", right)
    assert not refusal_matches(case, "torch", PortError("torch", "build", NameError("name 'x' is not defined")))
    # the right type in other words is not the refusal either
    assert not refusal_matches(case, "torch", PortError("torch", "build", ValueError("something else")))
    # a missing framework (ModuleNotFoundError) never counts as a refusal
    assert not refusal_matches(case, "tf1", PortError("tf1", "setup", ModuleNotFoundError("No module named 'tensorflow'")))
    # a subclass of the stated type matches
    class Sub(ValueError):
        pass

    assert Refusal("ValueError", "x").matches([c.__name__ for c in Sub.__mro__], "x")


def test_a_users_nameerror_in_a_must_refuse_case_is_a_crash_with_both_shown(capsys, tmp_path):
    port = user_port(tmp_path, "nameerror")
    code, out, err = run_main(capsys, "check", "seed004_nothing_to_train", "--torch-port", port,
                              "--frameworks", "torch", "--dtype", "float64")
    assert code == 3, out + err
    assert "WRONG REFUSAL" in out
    assert "must refuse with ValueError matching /optimizer got an empty parameter list/" in " ".join(out.split())  # wrapped to the width
    assert "it raised NameError" in out
    assert f"{os.path.basename(port)}:{line_of(port, 'undefined_name_in_build')}" in out


def test_a_users_right_refusal_passes(capsys, tmp_path):
    code, out, err = run_main(capsys, "check", "seed004_nothing_to_train", "--torch-port", user_port(tmp_path, "ok"),
                              "--frameworks", "torch", "--dtype", "float64")
    assert code == 0 and "refused (expected)" in out, out + err


def test_refusals_and_crashes_in_json(capsys, tmp_path):
    out_json = tmp_path / "r.json"
    port = user_port(tmp_path, "nameerror")
    code, _, _ = run_main(capsys, "check", "seed004_nothing_to_train", "--torch-port", port,
                          "--frameworks", "torch", "--dtype", "float64", "--json", out_json)
    assert code == 3
    doc = strict_json(out_json.read_text())
    validate(doc)
    (case,) = doc["cases"]
    (error,) = case["dtypes"][0]["errors"]
    assert case["status"] == "crashed" and doc["exit_code"] == 3 and case["user_ports"] == {"torch": port}
    assert doc["command"][:2] == ["check", "seed004_nothing_to_train"]
    assert error["exc_type"] == "NameError" and not error["as_expected"]
    assert error["expected_refusal"]["exc_type"] == "ValueError"
    assert error["where"]["line"] == line_of(port, "undefined_name_in_build")
    assert {p["reason"] for p in case["ports_not_run"]} == {"left out by --frameworks"}


# -- crashes and divergences ---------------------------------------------------------------


def test_a_ports_own_exception_in_check_names_file_and_line(capsys, tmp_path):
    port = user_port(tmp_path, "raise")
    code, out, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", port,
                              "--frameworks", "torch,numpy", "--dtype", "float64")
    assert code == 3, out + err
    assert "CRASH" in out and f"{os.path.basename(port)}:{line_of(port, 'raise RuntimeError')}" in out
    assert "raised RuntimeError during step 0: the user's step failed" in one_error_line(err)


@pytest.mark.parametrize("mode, says", [
    ("none", "step 0 returned NoneType"),
    ("float_stage", "stage 'loss' as a float"),
    ("own_stage", "unknown stage 'my_stage'"),
])
def test_a_port_breaking_the_protocol_is_a_crash_with_json(capsys, tmp_path, mode, says):
    out_json = tmp_path / "r.json"
    code, out, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", user_port(tmp_path, mode),
                              "--frameworks", "torch,numpy", "--dtype", "float64", "--json", out_json)
    assert code == 3, out + err
    line = one_error_line(err)
    assert "ProtocolError during step 0" in line and says in line, line
    doc = strict_json(out_json.read_text())
    validate(doc)
    assert doc["cases"][0]["dtypes"][0]["errors"][0]["exc_type"] == "ProtocolError"


def test_a_diverging_users_port_exits_1_and_writes_strict_json(capsys, tmp_path):
    out_json = tmp_path / "deep" / "er" / "r.json"  # the directories are created
    code, out, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", user_port(tmp_path, "wrong"),
                              "--frameworks", "torch,numpy", "--json", out_json)
    assert code == 1, out + err
    doc = strict_json(out_json.read_text())
    validate(doc)
    (case,) = doc["cases"]
    assert case["status"] == "failed" and doc["exit_code"] == 1 and doc["kind"] == "check"
    cmp = case["dtypes"][0]["comparisons"][0]
    first = cmp["first_divergence"]
    assert first["step"] == 0 and first["stage"] == "gradients" and first["a_value"] != first["b_value"]
    assert cmp["diagnosis"]["status"] in ("named", "unknown")
    assert {p["port"] for p in case["ports_not_run"]} == {"tf1", "tf1:minimize", "tf2"}


# -- check: must-diverge and nothing to compare with ---------------------------------------


def test_check_with_no_port_of_another_framework_refuses_with_a_reason(capsys, tmp_path):
    code, _, err = run_main(capsys, "check", "seed002_torch_renorm_eps", "--torch-port", user_port(tmp_path, "ok"))
    assert code == 2
    assert "no port of another framework than torch" in one_error_line(err)


def test_check_with_only_uninstalled_or_left_out_partners_refuses(capsys, tmp_path):
    code, _, err = run_main(capsys, "check", "seed004_oscillate", "--torch-port", user_port(tmp_path, "ok"),
                            "--frameworks", "torch")
    assert code == 2 and "none of the ports to compare yours with can run" in one_error_line(err)


@pytest.mark.tf
@pytest.mark.torch
def test_check_on_a_must_diverge_case_says_what_it_means(capsys, tmp_path):
    """A right torch port in place of pitfall_sgd_dampening_wrong's wrong one: a pass, and the note says why."""
    from parity.cases.registry import get_case

    case = get_case("pitfall_sgd_dampening_wrong")
    port = tmp_path / "my_torch_port.py"  # the user's file: the reference torch port, re-exported
    port.write_text(f"from torch_impl.{case.module} import build, framework_info  # noqa: F401\n")
    code, out, err = run_main(capsys, "check", case.name, "--torch-port", port, "--dtype", "float64")
    note = [l for l in err.splitlines() if l.startswith("note:")]
    assert note and "must-diverge" in note[0] and "expects it to MATCH" in note[0], err
    assert code == 0, out + err
    assert "MISSED" not in out


@pytest.mark.torch
def test_a_real_must_diverge_run_writes_schema_valid_json(capsys, tmp_path):
    """seed002_torch_renorm_eps (torch only): caught, exit 0, the first divergence with both values."""
    out_json = tmp_path / "r.json"
    code, out, err = run_main(capsys, "run", "seed002_torch_renorm_eps", "--json", out_json)
    assert code == 0 and "caught: SEMANTIC" in out, out + err
    doc = strict_json(out_json.read_text())
    validate(doc)
    cmp = doc["cases"][0]["dtypes"][0]["comparisons"][0]
    assert cmp["expect"] == "diverge" and cmp["behaved"] and not cmp["ok"]
    first = cmp["first_divergence"]
    assert (first["step"], first["stage"]) == (0, "constrained") and first["a_value"] != first["b_value"]
