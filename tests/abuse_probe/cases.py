"""The abuse probe's table: every case, its command, its files and the exit codes the contract allows.

Categories: args (bad arguments and options), inputs (program and port files), mapping (mapping
files), traces (``compare``), outputs (output paths), faults (the user's code misbehaving),
signals, concurrency, planted (modules planted in the working directory). The signal and
concurrency drivers are in :mod:`.actions`.
"""

from __future__ import annotations

from . import actions as A
from .files import (PORT, all_of, both, cut, files_exist, mapping, mentions, plant, planted_unused, port, port_line,
                    program, program_line, programs, unchanged, write)
from .probe import Probe

# The cheap verdict commands: a user's numpy port against the numpy oracle (no framework imported),
# two recorded traces compared (nothing run).
CHECK = ("check", "seed004_oscillate", "--frameworks", "torch,numpy", "--dtype", "float64", "--torch-port", "port.py")
COMPARE = ("compare", "{fx}/numpy.trace", "{fx}/torch.trace")
RUN = ("run", "seed004_oscillate", "--frameworks", "torch,numpy")
DIFF = ("diff", "ref.py", "port.py", "--steps", "3", "--dtype", "float64")
NOWHERE = "/proc/parity-cannot-write-here"  # not writable even as root
E = "parity: error:"


def full(d):
    """``full``: a disk that is full (a link to /dev/full: replacing the link, as a rename would, never
    replaces the device, even as root)."""
    for name in ("full", "full.trace"):  # record -o full writes full.trace
        (d / name).symlink_to("/dev/full")

CASES: list[Probe] = []


def case(name, category, argv=(), expect=(0,), **kw):
    CASES.append(Probe(name, category, tuple(argv), tuple(expect), **kw))


# -- args ----------------------------------------------------------------------------------------------
case("unknown case", "args", ("run", "no_such_case"), (2,), fast=True, check=mentions("unknown case"))
case("no case, no --all", "args", ("run",), (2,))
case("--all and a case", "args", ("run", "--all", "seed004_oscillate", "--json", NOWHERE + "/r.json"), (2,))
case("bad --dtype", "args", ("run", "seed004_oscillate", "--dtype", "float16"), (2,), fast=True)
case("empty --dtype", "args", ("run", "seed004_oscillate", "--dtype", ""), (2,))
case("unknown framework", "args", ("run", "seed004_oscillate", "--frameworks", "jax"), (2,), fast=True)
case("empty --frameworks", "args", ("run", "seed004_oscillate", "--frameworks", ""), (2,))
case("frameworks leave nothing to compare", "args", ("run", "seed004_oscillate", "--frameworks", "numpy"), (0, 2),
     note="(0 only with a report)", check=mentions("not run"))
case("unknown tag", "args", ("run", "--tag", "no_such_tag"), (2,))
case("unknown option", "args", ("run", "--no-such-option"), (2,), fast=True)
case("unknown command", "args", ("frobnicate",), (2,), fast=True)
case("no command", "args", (), (0, 2), note="(usage)", check=mentions("usage"))
case("--traceback before the command", "args", ("--traceback", "run", "no_such_case"), (2,))
case("--traceback after the command", "args", ("run", "no_such_case", "--traceback"), (2,))
case("diff: one file", "args", ("diff", "ref.py"), (2,), setup=programs())
case("diff --steps 0", "args", (*DIFF[:3], "--steps", "0"), (2,), setup=programs(), fast=True)
case("diff --steps -1", "args", (*DIFF[:3], "--steps", "-1"), (2,), setup=programs())
case("diff --steps abc", "args", (*DIFF[:3], "--steps", "abc"), (2,), setup=programs())
case("diff --seed abc", "args", (*DIFF, "--seed", "abc"), (2,), setup=programs())
case("diff --seed -1", "args", (*DIFF, "--seed", "-1"), (2,), setup=programs(), needs="torch")
case("diff --own-init -3", "args", (*DIFF, "--own-init", "-3"), (2,), setup=programs(), needs="torch")
case("diff --dtype float16", "args", (*DIFF[:3], "--dtype", "float16"), (2,), setup=programs())
case("record: unknown port", "args", ("record", "seed004_oscillate", "--port", "nope", "-o", "x.trace"), (2,),
     check=files_exist(absent=("x.trace",)))
case("record: no -o", "args", ("record", "seed004_oscillate", "--port", "numpy"), (2,))
case("record: unknown case", "args", ("record", "nope", "--port", "numpy", "-o", "x.trace"), (2,))
case("compare: one trace", "args", ("compare", "{fx}/numpy.trace"), (2,))
case("explain: unknown pitfall", "args", ("explain", "no-such-pitfall"), (2,), fast=True)
case("check: no port given", "args", ("check", "seed004_oscillate"), (2,))
case("check: unknown case", "args", ("check", "nope", "--torch-port", "port.py"), (2,), setup=port("ok"))
case("check: --frameworks names only the others", "args",
     ("check", "seed004_oscillate", "--frameworks", "numpy", "--torch-port", "port.py"), (0,), setup=port("ok"),
     check=mentions("numpy vs torch", where="out"))
case("--version", "args", ("--version",), (0,), check=mentions(r"^parity \d", where="out"))
case("list", "args", ("list",), (0,), check=mentions("seed004_oscillate", where="out"))

# -- inputs: port files (check) and program files (diff) -----------------------------------------------
case("port file missing", "inputs", CHECK, (2,), fast=True, check=mentions("port.py"))
case("port file is a directory", "inputs", CHECK, (2,), setup=lambda d: (d / "port.py").mkdir(),
     check=mentions("directory"))
case("port file empty", "inputs", CHECK, (2, 3), setup=write(port__py=""), check=mentions("port.py"))
case("port file binary", "inputs", CHECK, (2, 3), setup=lambda d: (d / "port.py").write_bytes(bytes(range(256)) * 4),
     check=mentions("port.py"))
case("port file: syntax error", "inputs", CHECK, (2, 3), setup=write(port__py="def build(:\n"),
     check=mentions(r"port\.py\D{0,12}1\b"))
case("port file raises at import", "inputs", CHECK, (3,), setup=port("import_raise"), fast=True,
     check=mentions(rf"port\.py\D{{0,12}}{port_line('import_raise')}\b"))
case("port file has no build()", "inputs", CHECK, (2, 3), setup=port("nobuild"), check=mentions("build"))
case("program file missing", "inputs", DIFF, (2,), setup=write(port__py=""), check=mentions("ref.py"))
case("program file is a directory", "inputs", DIFF, (2,),
     setup=both(programs(), lambda d: ((d / "ref.py").unlink(), (d / "ref.py").mkdir())), check=mentions("directory"))
case("program file empty", "inputs", DIFF, (2,), setup=programs(ref_text=""), needs="torch")
case("program file binary", "inputs", DIFF, (2, 3),
     setup=both(programs(), lambda d: (d / "ref.py").write_bytes(bytes(range(256)) * 4)), check=mentions("ref.py"))
case("program: syntax error", "inputs", DIFF, (2, 3), setup=programs(port_text="x = (\n"),
     check=mentions(r"port\.py"), needs="torch")
case("program: no parity_program()", "inputs", DIFF, (2,), setup=programs(port_text=program(drop_function=True)),
     check=mentions("parity_program"), needs="torch")
case("program: no framework", "inputs", DIFF, (2,),
     setup=programs(port_text="import numpy as np\n\ndef parity_program():\n    return {}\n"), needs="torch")
case("program: unknown PARITY_FRAMEWORK", "inputs", DIFF, (2,),
     setup=programs(port_text="PARITY_FRAMEWORK = 'jax'\n\ndef parity_program():\n    return {}\n"),
     check=mentions("jax"), needs="torch")
case("parity_program returns 42", "inputs", DIFF, (2,), setup=programs(port_text=program(returns="return 42")),
     needs="torch")
case("parity_program returns None", "inputs", DIFF, (2,), setup=programs(port_text=program(returns="return None")),
     needs="torch")
case("parity_program returns {}", "inputs", DIFF, (2,), setup=programs(port_text=program(returns="return {}")),
     needs="torch")
case("parity_program: no optimizer", "inputs", DIFF, (2,), needs="torch",
     setup=programs(port_text=program(returns='return {"model": model, "loss": squared_error, "data": batches}')),
     check=mentions("optimizer"))
case("parity_program: model is an int", "inputs", DIFF, (2,), needs="torch",
     setup=programs(port_text=program(returns='return {"model": 3, "optimizer": optimizer, "loss": squared_error}')),
     check=mentions("model"))
case("parity_program: data is an int", "inputs", DIFF, (2,), needs="torch",
     setup=programs(ref_text=program(returns='return {"model": model, "optimizer": optimizer, '
                                             '"loss": squared_error, "data": 5}')), check=mentions("data"))
case("parity_program raises", "inputs", DIFF, (3,), needs="torch",
     setup=programs(port_text=program(returns="raise RuntimeError('no program today')  # LINE:pp")),
     check=mentions(rf"port\.py\D{{0,12}}{program_line(program(returns='raise X  # LINE:pp'), 'LINE:pp')}\b"))
case("program raises at import", "inputs", DIFF, (3,), needs="torch",
     setup=programs(port_text=program(head="raise RuntimeError('broken at import')  # LINE:imp")),
     check=mentions(rf"port\.py\D{{0,12}}{program_line(program(head='raise X  # LINE:imp'), 'LINE:imp')}\b"))
case("reference raises at import", "inputs", DIFF, (3,), needs="torch",
     setup=programs(ref_text=program(head="raise RuntimeError('broken at import')")), check=mentions(r"ref\.py"))
case("program exits at import (sys.exit(0))", "inputs", DIFF, (2, 3), needs="torch",
     setup=programs(port_text=program(head="import sys; sys.exit(0)")), check=mentions(r"port\.py"))
case("program os._exit(0) at import", "inputs", DIFF, (3,), needs="torch",
     setup=programs(port_text=program(head="import os; os._exit(0)")), check=mentions("os._exit"))
case("TF1 program training at import", "inputs",
     ("diff", "{ex}/habits/tf1_trains_at_import.py", "{ex}/habits/torch_mlp.py", "--steps", "2",
      "--dtype", "float64"), (0, 1), needs="tf", note="(a verdict)")

# -- mapping files -----------------------------------------------------------------------------------------
MAP = (*DIFF, "--mapping", "m.json")
case("mapping: the good one", "mapping", MAP, (0,), setup=mapping(), needs="torch")
case("mapping: missing", "mapping", MAP, (2,), setup=programs(), check=mentions("m.json"))
case("mapping: a directory", "mapping", MAP, (2,), setup=both(programs(), lambda d: (d / "m.json").mkdir()),
     check=mentions("directory"))
case("mapping: bad JSON", "mapping", MAP, (2,), setup=mapping(raw="{\"params\": ["), check=mentions("m.json"))
case("mapping: empty", "mapping", MAP, (2,), setup=mapping(raw=""))
case("mapping: a list", "mapping", MAP, (2,), setup=mapping(raw="[1, 2]"))
case("mapping: NaN shape", "mapping", MAP, (2,), needs="torch",
     setup=mapping(lambda m: m["params"][0].update(shape=[float("nan")])), check=mentions("shape"))
case("mapping: negative shape", "mapping", MAP, (2,), needs="torch",
     setup=mapping(lambda m: m["params"][0].update(shape=[-1])), check=mentions("shape"))
case("mapping: unknown field", "mapping", MAP, (2,), needs="torch",
     setup=mapping(lambda m: m["params"][0].update(colour="red")), check=mentions("colour"))
case("mapping: duplicate targets", "mapping", MAP, (2,), needs="torch",
     setup=mapping(lambda m: m["params"][1].update(port="w1")), check=mentions("w1"))
case("mapping: unknown variable", "mapping", MAP, (2,), needs="torch",
     setup=mapping(lambda m: m["params"][0].update(reference="no_such_var")), check=mentions("no_such_var"))
case("mapping: future format", "mapping", MAP, (2,), needs="torch", setup=mapping(lambda m: m.update(format=99)))

# -- traces (compare) ------------------------------------------------------------------------------------
case("compare two traces", "traces", COMPARE, (0,), fast=True)
case("compare a trace with itself", "traces", ("compare", "{fx}/numpy.trace", "{fx}/numpy.trace"), (0,))
case("compare: float64 against float32", "traces", ("compare", "{fx}/numpy.trace", "{fx}/numpy32.trace"), (2,))
case("compare: two cases", "traces", ("compare", "{fx}/numpy.trace", "{fx}/other.trace"), (2,))
case("compare: missing", "traces", ("compare", "nope.trace", "{fx}/numpy.trace"), (2,), fast=True)
case("compare: a directory", "traces", ("compare", "{d}", "{fx}/numpy.trace"), (2,), fast=True)
case("compare: empty", "traces", ("compare", "t.trace", "{fx}/numpy.trace"), (2,), setup=write(t__trace=""))
case("compare: truncated", "traces", ("compare", "t.trace", "{fx}/numpy.trace"), (2,),
     setup=cut("numpy.trace", "t.trace"), fast=True)
case("compare: truncated, --partial", "traces", ("compare", "t.trace", "{fx}/numpy.trace", "--partial"), (0, 2),
     setup=cut("numpy.trace", "t.trace"))
case("compare: wrong magic", "traces", ("compare", "t.trace", "{fx}/numpy.trace"), (2,),
     setup=cut("numpy.trace", "t.trace", head=b"NOT-A-TRACE 9\n"))
case("compare: a text file", "traces", ("compare", "t.trace", "{fx}/numpy.trace"), (2,),
     setup=write(t__trace="hello\n" * 100))
case("compare: /dev/null", "traces", ("compare", "/dev/null", "{fx}/numpy.trace"), (2,))
case("compare: a JSON report as a trace", "traces", ("compare", "r.json", "{fx}/numpy.trace"), (2,),
     setup=write(r__json='{"format": 1}'))
case("record: os._exit(0) in the port leaves no file", "traces",
     ("record", "seed004_oscillate", "--port", "torch", "--port-file", "port.py", "-o", "x.trace"), (3,),
     setup=port("exit0"), check=all_of(mentions("without a verdict"), files_exist(absent=("x.trace",))))

# -- outputs ---------------------------------------------------------------------------------------------
case("--json unwritable", "outputs", (*COMPARE, "--json", NOWHERE + "/r.json"), (2,), fast=True)
case("--json a directory", "outputs", (*COMPARE, "--json", "{d}"), (2,), check=mentions("directory"))
case("--json: parent created", "outputs", (*COMPARE, "--json", "a/b/r.json"), (0,), check=files_exist("a/b/r.json"))
case("--json and --html the same file", "outputs", (*COMPARE, "--json", "r", "--html", "r"), (2,), fast=True,
     check=files_exist(absent=("r",)))
case("--json and --markdown the same file", "outputs", (*COMPARE, "--json", "r", "--markdown", "./r"), (2,))
case("--json overwrites an input trace", "outputs", ("compare", "a.trace", "{fx}/torch.trace", "--json", "a.trace"),
     (2,), setup=cut("numpy.trace", "a.trace", keep=1.0))
case("--json /dev/full", "outputs", (*COMPARE, "--json", "full"), (2,), fast=True, setup=full)
case("--html /dev/full", "outputs", (*COMPARE, "--html", "full"), (2,), setup=full)
case("--markdown /dev/full", "outputs", (*COMPARE, "--markdown", "full"), (2,), setup=full)
case("--json kept on a failed run", "outputs", ("compare", "nope.trace", "{fx}/torch.trace", "--json", "r.json"), (2,),
     setup=write(r__json="old"), check=all_of(unchanged("r.json", "old"), files_exist("r.json")))
case("record -o /dev/full", "outputs", ("record", "seed004_oscillate", "--port", "numpy", "-o", "full"), (2,),
     setup=full)
case("record -o a directory", "outputs", ("record", "seed004_oscillate", "--port", "numpy", "-o", "{d}"), (2,))
case("record -o unwritable", "outputs", ("record", "seed004_oscillate", "--port", "numpy", "-o", NOWHERE + "/x"), (2,))
case("record -o: parent created", "outputs", ("record", "seed004_oscillate", "--port", "numpy", "-o", "a/b/x.trace"),
     (0,), check=files_exist("a/b/x.trace"))
case("run --json /dev/full", "outputs", (*RUN, "--json", "full"), (2,), needs="torch", setup=full)
case("run --traces /dev/full", "outputs", (*RUN, "--traces", "full"), (2,), setup=full)
case("run --traces a file", "outputs", (*RUN, "--traces", "f"), (2,), setup=write(f="x"))
case("run --traces unwritable", "outputs", (*RUN, "--traces", NOWHERE + "/t"), (2,))
case("run --json and --traces the same path", "outputs", (*RUN, "--json", "o", "--traces", "o"), (2,))
case("run --html and --markdown the same file", "outputs", (*RUN, "--html", "o", "--markdown", "o"), (2,))
case("run --tensorboard a file", "outputs", (*RUN, "--tensorboard", "f"), (2,), setup=write(f="x"))
case("check --json overwrites the port", "outputs", (*CHECK, "--json", "port.py"), (2,), setup=port("ok"),
     check=unchanged("port.py", PORT.format(mode="ok")))
case("diff --json overwrites a program", "outputs", (*DIFF, "--json", "port.py"), (2,), setup=programs())
case("diff --save-mapping a directory", "outputs", (*DIFF, "--save-mapping", "{d}"), (2,), setup=programs())
case("diff --save-mapping unwritable", "outputs", (*DIFF, "--save-mapping", NOWHERE + "/m.json"), (2,),
     setup=programs())
case("diff --save-mapping same as --json", "outputs", (*DIFF, "--save-mapping", "r.json", "--json", "r.json"), (2,),
     setup=programs())
case("diff --save-mapping onto --mapping", "outputs", (*MAP, "--save-mapping", "m.json"), (0, 2), setup=mapping(),
     note="(the same pairs)", needs="torch")
case("diff --save-mapping: parent created", "outputs", (*DIFF, "--save-mapping", "a/m.json"), (0,), needs="torch",
     setup=programs(), check=files_exist("a/m.json"))
case("docs --out unwritable", "outputs", ("docs", "--out", NOWHERE + "/docs"), (2,))
case("docs --out a file", "outputs", ("docs", "--out", "f"), (2,), setup=write(f="x"))

# -- faults: the user's own code -------------------------------------------------------------------------
case("port raises in build", "faults", CHECK, (3,), setup=port("build_raise"),
     check=mentions(rf"port\.py\D{{0,12}}{port_line('build_raise')}\b"))
case("port raises in a step", "faults", CHECK, (3,), setup=port("step_raise"), fast=True,
     check=mentions(rf"port\.py\D{{0,12}}{port_line('step_raise')}\b", "step 1"))
case("port os._exit(0) in a step", "faults", CHECK, (3,), setup=port("exit0"), fast=True,
     check=mentions("without a verdict"))
case("port os._exit(0), PARITY_WORKERS=0", "faults", CHECK, (3,), setup=port("exit0"), env={"PARITY_WORKERS": "0"},
     check=mentions("without a verdict"))
case("port os._exit(0): port and step named", "faults", CHECK, (3,), setup=port("exit0"),
     check=mentions("torch port", "step 1"))
case("port sys.exit(0) in a step", "faults", CHECK, (3,), setup=port("sysexit0"),
     check=mentions(rf"port\.py\D{{0,12}}{port_line('sysexit0')}\b"))
case("port sys.exit(3) in a step", "faults", CHECK, (3,), setup=port("sysexit3"))
case("port infinite recursion", "faults", CHECK, (3,), setup=port("recursion"), check=mentions("RecursionError"))
case("port SIGKILLs itself", "faults", CHECK, (3,), setup=port("sigkill"), check=mentions("SIGKILL"))
case("port MemoryError", "faults", CHECK, (3,), setup=port("memory"), check=mentions("MemoryError"))
case("port step returns None", "faults", CHECK, (3,), setup=port("none"))
case("port step returns 42", "faults", CHECK, (3,), setup=port("junk"))
case("port step misses a stage", "faults", CHECK, (0, 3), setup=port("missing_stage"), note="(0: listed)",
     check=lambda o: o.rc == 3 or mentions("not compared: gradients")(o))
case("port NaN gradients", "faults", CHECK, (1,), setup=port("nan"))
case("port print storm", "faults", CHECK, (0,), setup=port("print"),
     check=lambda o: "user print" in o.out and "the user's prints are in the report on stdout" or None)
case("port warnings", "faults", CHECK, (0,), setup=port("warn"),
     check=mentions(rf"port\.py\D{{0,12}}{port_line('warn')}\b", where="err"))
case("diff: os._exit(0) in the loss", "faults", DIFF, (3,), needs="torch",
     setup=programs(port_text=program("exit0")), check=mentions("os._exit", r"port\.py", "during"))
case("diff: sys.exit(0) in the loss", "faults", DIFF, (3,), needs="torch",
     setup=programs(port_text=program("sysexit0")), check=mentions(r"port\.py"))
case("diff: the loss raises", "faults", DIFF, (3,), needs="torch", setup=programs(port_text=program("raise")),
     check=mentions(rf"port\.py\D{{0,12}}{program_line(program('raise'), 'LINE:raise')}\b"))
case("diff: infinite recursion", "faults", DIFF, (3,), needs="torch", setup=programs(port_text=program("recursion")),
     check=mentions("RecursionError"))
case("diff: print storm", "faults", DIFF, (0,), needs="torch", setup=programs(port_text=program("print")),
     check=lambda o: "user print" in o.out and "the user's prints are in the report on stdout" or None)
case("diff: warnings", "faults", DIFF, (0,), needs="torch", setup=programs(port_text=program("warn")),
     check=mentions(r"port\.py", "the loss warns", where="err"))
case("diff: NaN loss", "faults", DIFF, (1,), needs="torch", setup=programs(port_text=program("nan")))

# -- signals, concurrency -------------------------------------------------------------------------------
case("SIGINT to the group: run", "signals", RUN, (130,), action=A.signal_group("SIGINT", A.after_workers(1)),
     needs="torch")
case("SIGINT to the group: long step in the user's port", "signals", CHECK, (130,), setup=port("sleep"),
     action=A.signal_group("SIGINT", A.after_file("asleep")))
case("SIGINT twice", "signals", CHECK, (130,), setup=port("sleep"),
     action=A.signal_group("SIGINT", A.after_file("asleep"), twice=True))
case("SIGTERM to parity", "signals", (*CHECK, "--json", "r.json"), (-15, 143), setup=port("sleep"),
     action=A.signal_top("SIGTERM", A.after_file("asleep")), check=files_exist(absent=("r.json",)))
case("SIGHUP to parity", "signals", CHECK, (-1, 129), setup=port("sleep"),
     action=A.signal_top("SIGHUP", A.after_file("asleep")))
case("SIGKILL of the harness: workers gone", "signals", CHECK, (3,), setup=port("sleep"), action=A.kill_harness(),
     check=mentions("SIGKILL"))
case("SIGKILL of parity: all gone", "signals", CHECK, (-9,), setup=port("sleep"), action=A.kill_top())
case("two runs sharing --traces", "concurrency", RUN, (0,), action=A.twice("--traces", "t", "--json", "r{i}.json"),
     needs="torch", check=files_exist("r0.json", "r1.json"))
case("two compares writing one --json", "concurrency", COMPARE, (0,), action=A.twice("--json", "r.json"),
     check=A.json_ok("r.json"))
case("two records writing one trace", "concurrency", ("record", "seed004_oscillate", "--port", "numpy"), (0,),
     action=A.twice("-o", "x.trace"), check=A.trace_ok("x.trace"))

# -- planted modules in the working directory -----------------------------------------------------------
case("numpy.py planted: parity list", "planted", ("list",), (0,), setup=plant("numpy"), check=planted_unused())
case("numpy.py planted: python -m parity list", "planted", ("list",), (0,), setup=plant("numpy"), module=True,
     fast=True, check=planted_unused())
case("numpy.py planted: python -m parity --version", "planted", ("--version",), (0,), setup=plant("numpy"),
     module=True, check=planted_unused())
case("numpy.py planted: parity check", "planted", CHECK, (0,), setup=both(port("ok"), plant("numpy")),
     check=planted_unused())
case("numpy.py planted: python -m parity check", "planted", CHECK, (0,), setup=both(port("ok"), plant("numpy")),
     module=True, check=planted_unused())
case("numpy.py planted: parity run", "planted", RUN, (0,), setup=plant("numpy"), needs="torch", check=planted_unused())
case("torch.py planted: parity run", "planted", RUN, (0,), setup=plant("torch"), needs="torch", check=planted_unused())
case("tf_impl/ planted: parity run", "planted", RUN, (0,), setup=plant("tf_impl", package=True), needs="torch",
     check=planted_unused())
case("parity.py planted: parity list", "planted", ("list",), (0,), setup=plant("parity"), check=planted_unused())
case("parity/ planted: parity list", "planted", ("list",), (0,), setup=plant("parity", package=True),
     check=planted_unused())
case("sitecustomize.py planted: python -m parity list", "planted", ("list",), (0,), setup=plant("sitecustomize"),
     module=True, check=planted_unused())
case("numpy.py planted: parity diff", "planted", DIFF, (0,), setup=both(programs(), plant("numpy")), needs="torch",
     check=planted_unused())


def by_name() -> dict:
    names = [p.name for p in CASES]
    assert len(names) == len(set(names)), "two probes share a name"
    return {p.name: p for p in CASES}
