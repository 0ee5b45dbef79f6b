"""What a program's source states of its own schedule (parity.program.stated): epochs, training steps,
batch size and shuffling, read with ast (nothing executed), reported in "What this comparison does not
cover" where the two programs differ (issue 23 item 3)."""

from __future__ import annotations

import textwrap

from parity.program.facts import not_covered
from parity.program.stated import stated


def _file(tmp_path, name, text):
    p = tmp_path / name
    p.write_text(textwrap.dedent(text))
    return str(p)


def test_keras_fit_keywords_resolved_through_module_names(tmp_path):
    f = _file(tmp_path, "keras_prog.py", """
        batch_size = 32
        epochs = 100
        def build(batch_size=3):      # a parameter says what a function accepts: not read
            pass
        if __name__ == "__main__":
            model.fit(x, y, batch_size=batch_size, epochs=epochs, shuffle=True)
        """)
    s = stated(f)
    assert (s["epochs"], s["batch_size.stated"], s["shuffle"]) == (100, 32, True)
    assert s["epochs.where"] == "fit(epochs=...) at keras_prog.py:7"


def test_argparse_and_flags_defaults(tmp_path):
    a = _file(tmp_path, "torch_prog.py", """
        import argparse
        parser = argparse.ArgumentParser()
        parser.add_argument('-b', '--batch-size', type=int, default=64)
        parser.add_argument('--epochs', type=int, default=14, help='number of epochs')
        def main():
            args = parser.parse_args()
            loader = DataLoader(ds, batch_size=args.batch_size, shuffle=False)
        """)
    s = stated(a)
    assert (s["epochs"], s["batch_size.stated"], s["shuffle"]) == (14, 64, False)
    assert s["epochs.where"] == "torch_prog.py:5"
    b = _file(tmp_path, "tf1_prog.py", """
        flags = tf.app.flags
        flags.DEFINE_integer("batch_size", 128, "batch")
        flags.DEFINE_integer("training_steps", 10000, "steps")
        """)
    assert stated(b) == {"batch_size.stated": 128, "batch_size.stated.where": "tf1_prog.py:3",
                         "steps": 10000, "steps.where": "tf1_prog.py:4", "seeds": []}  # read: sets no seed


def test_a_module_beside_the_file_that_it_imports(tmp_path):
    _file(tmp_path, "trainer.py", "EPOCHS = 12\n")
    glue = _file(tmp_path, "glue.py", "import trainer\ndef parity_program():\n    pass\n")
    assert stated(glue)["epochs"] == 12 and stated(glue)["epochs.where"] == "trainer.py:1"


def test_nothing_stated_and_unresolvable_values(tmp_path):
    f = _file(tmp_path, "p.py", "import os\nepochs = int(os.environ['E'])\nfit(epochs=n)\n")
    assert stated(f) == {"seeds": []}  # read: no schedule stated, no seed set
    assert stated(str(tmp_path / "missing.py")) == {} and stated(None) == {}


def test_not_covered_lists_what_differs_with_where():
    facts = {"reference": {"epochs": 100, "epochs.where": "ref.py:19", "batch_size.stated": 32},
             "port": {"steps": 10000, "steps.where": "port.py:31", "batch_size.stated": 32}}
    lines = not_covered(facts)
    assert "epochs: 100 (ref.py:19) vs not stated" in lines
    assert "training steps: not stated vs 10000 (port.py:31)" in lines
    assert not any(l.startswith("batch size its training uses") for l in lines)  # the same on both sides
    assert not any("not stated by the programs" in l for l in lines)
    assert any("not stated by the programs" in l for l in not_covered({"reference": {}, "port": {}}))
