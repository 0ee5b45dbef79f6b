"""What lies outside a training step, read from each program's source and said in "What this comparison
does not cover" (issue 23 item 3): seeds, augmentation, input scaling, schedules over epochs, and
shuffling left to a default (parity.program.outside, parity.program.stated, parity.program.source).
The tutorial pair is examples/outside/; each case below is a form a real program pair used
(../shared/corpus: Keras CIFAR examples, pytorch/examples, carpedm20's DCGAN)."""

from __future__ import annotations

import json
import os
import textwrap

import pytest

from parity.program.facts import compare_facts, not_covered
from parity.program.outside import lines
from parity.program.stated import stated

HERE = os.path.dirname(os.path.abspath(__file__))
KERAS = os.path.join(HERE, "..", "examples", "outside", "keras_cifar_augment.py")
TORCH = os.path.join(HERE, "..", "examples", "outside", "torch_cifar_augment.py")


def _file(tmp_path, name, text):
    p = tmp_path / name
    p.parent.mkdir(parents=True, exist_ok=True)
    p.write_text(textwrap.dedent(text))
    return str(p)


def _block(ref_path, port_path, ref_fw="tf2", port_fw="torch"):
    a, b = stated(ref_path), stated(port_path)
    a["framework"], b["framework"] = ref_fw, port_fw
    return a, b, not_covered({"reference": a, "port": b})


def _line(lines_, head):
    got = [x for x in lines_ if x.startswith(head)]
    assert len(got) == 1, (head, lines_)
    return got[0]


def test_the_tutorial_pair_lists_every_outside_difference_with_where():
    a, b, block = _block(KERAS, TORCH)
    assert _line(block, "batch size its training uses: ") == (
        "batch size its training uses: 32 (flow(batch_size=...) at keras_cifar_augment.py:63) vs 64 "
        "(DataLoader(batch_size=...) at torch_cifar_augment.py:49)")
    seeds = _line(block, "seeds: ")
    built = " (runs as the file is built: it replaces parity's seed)"  # module level: parity's build runs it
    assert seeds.startswith(f"seeds: np.random.seed(7) at keras_cifar_augment.py:21{built}; tf.random.set_seed(7) at "
                            f":22{built} vs torch.manual_seed(1) in main() at torch_cifar_augment.py:40: different "
                            "generators")
    assert "parity seeds each build itself from --seed" in seeds and "do not reach this comparison" in seeds
    assert _line(block, "augmentation: ") == (
        "augmentation: ImageDataGenerator(width_shift_range=0.125, height_shift_range=0.125, horizontal_flip=True, "
        "fill_mode='nearest') at keras_cifar_augment.py:61 vs RandomCrop(8, padding=1) in main() at "
        "torch_cifar_augment.py:43; RandomHorizontalFlip() in main() at :44 (parity feeds both programs the same "
        "batches, so a difference here does not show in this comparison)")
    scaling = _line(block, "input scaling: ")
    assert scaling.startswith(
        "input scaling: x_train = x_train[:, ::4, ::4].astype('float32') / 255 at keras_cifar_augment.py:53; "
        "x_train -= x_train_mean at :55 (x_train_mean = np.mean(x_train, axis=0)) vs Resize(8) in main() at "
        "torch_cifar_augment.py:42; ToTensor() (uint8 images to [0, 1]) in main() at :45; Normalize((0.49, 0.48, 0.45), (0.25, 0.24, 0.26)) in main() at :46")
    assert _line(block, "schedule over epochs: ") == (
        "schedule over epochs: LearningRateScheduler(lr_schedule) at keras_cifar_augment.py:57 (lr_schedule: a "
        "function of the epoch, defined at :34) vs MultiStepLR(optimizer, milestones=[15], gamma=0.1) in main() at "
        "torch_cifar_augment.py:50, .step() per epoch at :53 (parity does not run these: it compares the steps it "
        "runs at the rate each program's step uses)")
    # the same epochs, both shuffling (flow's default vs DataLoader(shuffle=True)): no line
    assert (a["epochs"], b["epochs"], a["shuffle"], b["shuffle"]) == (30, 30, True, True)
    assert a["shuffle.where"] == "ImageDataGenerator.flow's default, at keras_cifar_augment.py:63"
    assert not any(x.startswith(("epochs:", "shuffling")) for x in block)
    # the facts table carries them (described, not compared), so the JSON report does
    rows = {r.key: r for r in compare_facts(a, b)}
    assert rows["seeds"].status == rows["augmentation"].status == "info"
    assert rows["lr.schedule.epochs"].port[0].startswith("MultiStepLR(")


def test_keras_fit_shuffles_by_default_and_a_branch_a_literal_decides_is_left_out(tmp_path):
    f = _file(tmp_path, "k.py", """
        batch_size = 128
        epochs = 50
        augment = False
        model.fit(x_train, epochs=epochs, batch_size=batch_size, validation_data=(x_test, None))
        if augment:
            gen = ImageDataGenerator(horizontal_flip=True)
            model.fit(gen.flow(x_train, y_train, batch_size=16), epochs=3)
        """)
    s = stated(f)
    assert (s["shuffle"], s["shuffle.where"]) == (True, "fit's default, at k.py:5")
    assert (s["epochs"], s["batch_size.stated"]) == (50, 128) and "augmentation" not in s
    g = _file(tmp_path, "g.py", "model.fit(ds, epochs=3)\n")  # a dataset: fit's shuffle does not apply
    assert "shuffle" not in stated(g)


def test_seed_from_options_and_a_random_seed_when_none_is_given(tmp_path):
    f = _file(tmp_path, "t.py", """
        import argparse, random, torch
        parser = argparse.ArgumentParser()
        parser.add_argument('--manualSeed', type=int, help='manual seed')
        parser.add_argument('--seed', type=int, default=1111)
        opt = parser.parse_args()
        if opt.manualSeed is None:
            opt.manualSeed = random.randint(1, 10000)
        torch.manual_seed(opt.manualSeed)
        def main():
            torch.cuda.manual_seed_all(opt.seed)
        def parity_program():
            torch.manual_seed(3)  # what parity runs: not the program's own seeding
        """)
    assert stated(f)["seeds"] == [
        "torch.manual_seed(opt.manualSeed), which is random.randint(1, 10000) when none is given at t.py:9 "
        "(runs as the file is built: it replaces parity's seed)",
        "torch.cuda.manual_seed_all(1111) in main() at t.py:11"]
    tf1 = _file(tmp_path, "m.py", """
        import numpy as np
        class DCGAN:
            def load_mnist(self):
                seed = 547
                np.random.seed(seed)
        """)
    a, b = stated(tf1), stated(f)
    a["framework"], b["framework"] = "tf1", "torch"
    line = _line(lines(a, b), "seeds: ")
    assert line.startswith("seeds: np.random.seed(547) in DCGAN.load_mnist() at m.py:6 (its TensorFlow generator not "
                           "seeded) vs torch.manual_seed(opt.manualSeed)")
    none = {"seeds": [], "framework": "tf2"}
    assert _line(lines(none, dict(none, framework="torch")), "seeds: ").startswith(
        "seeds: not seeded vs not seeded: what either draws at random differs from run to run; parity seeds each build")


def test_a_glue_file_states_what_the_script_it_imports_from_a_sys_path_folder_states(tmp_path):
    _file(tmp_path, "upstream/trainer.py", """
        import torchvision.transforms as transforms
        from torch.optim.lr_scheduler import StepLR
        def main():
            normalize = transforms.Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225])
            train_loader = DataLoader(ds(transform=transforms.Compose([transforms.RandomCrop(32, 4),
                                      transforms.ToTensor(), normalize])), batch_size=128, shuffle=True)
            val_loader = DataLoader(ds(transform=transforms.Compose([transforms.ColorJitter(0.1)])), batch_size=7)
            scheduler = StepLR(opt, step_size=1, gamma=0.7)
            for epoch in range(10):
                for x, y in train_loader:
                    pass
                scheduler.step()
        """)
    glue = _file(tmp_path, "glue/port.py", f"""
        import sys
        sys.path.insert(0, {str(tmp_path / 'upstream')!r})
        import trainer
        def parity_program():
            return {{}}
        """)
    s = stated(glue)
    up = os.path.join(str(tmp_path), "upstream", "trainer.py")
    assert s["batch_size.stated"] == 128 and s["shuffle"] is True  # not the validation loader's 7
    assert s["augmentation"] == [f"RandomCrop(32, 4) in main() at {up}:6"]  # ColorJitter: validation only
    assert s["input.scaling"] == [f"Normalize(mean=[0.485, 0.456, 0.406], std=[0.229, 0.224, 0.225]) in main() at {up}:5",
                                  f"ToTensor() (uint8 images to [0, 1]) in main() at {up}:7"]
    assert s["lr.schedule.epochs"] == [f"StepLR(opt, step_size=1, gamma=0.7) in main() at {up}:9, .step() per epoch at :13"
                                       .replace(" at :13", f" at {up}:13")]


def test_a_scheduler_handed_to_parity_is_not_listed_and_tf1_scaling_forms(tmp_path):
    f = _file(tmp_path, "p.py", """
        import torch
        sched = torch.optim.lr_scheduler.ExponentialLR(opt, gamma=0.9)
        def parity_program():
            return {"scheduler": sched, "scheduler_unit": "epoch"}
        """)
    assert "lr.schedule.epochs" not in stated(f)
    h = _file(tmp_path, "h.py", """
        import torch
        scheduler = torch.optim.lr_scheduler.LambdaLR(opt, lambda t: 0.9 ** t)
        def train_step(batch):
            opt.step()
            scheduler.step()    # parity runs train_step: the schedule is in the step it compares
        def parity_program():
            return {"train_step": train_step}
        """)
    assert "lr.schedule.epochs" not in stated(h)
    g = _file(tmp_path, "u.py", """
        import tensorflow as tf
        def transform(image):
            return np.array(image) / 127.5 - 1.
        def augment(image):
            return tf.image.random_flip_left_right(image)
        mnist = input_data.read_data_sets("/tmp/data/", one_hot=True)
        x_test = x_test / 255
        """)
    m = _file(tmp_path, "net.py", """
        import numpy as np
        class Net(nn.Module):
            def forward(self, x):
                x = x / 255          # the model's own: parity runs it in the step
                m = x.mean()
                return x - m
        model = keras.Sequential([keras.layers.Lambda(lambda x: x / 127.5 - 1)])
        """)
    assert "input.scaling" not in stated(m)
    s = stated(g)
    assert s["input.scaling"] == ["return np.array(image) / 127.5 - 1.0 in transform() at u.py:4",
                                  "read_data_sets(...) (float32 pixels in [0, 1], its default) at u.py:7"]
    assert s["augmentation"] == ["tf.image.random_flip_left_right(image) in augment() at u.py:6"]


def test_nothing_said_where_both_state_the_same_and_nothing_read_without_a_file():
    same = {"seeds": ["torch.manual_seed(1) at a.py:3"], "augmentation": ["RandomHorizontalFlip() at a.py:5"],
            "framework": "torch"}
    other = dict(same, augmentation=["RandomHorizontalFlip() at b.py:9"])
    got = lines(same, other)
    assert [x.split(":")[0] for x in got] == ["seeds"]  # the same transform in another file: no augmentation line
    assert lines({}, {}) == [] and stated(None) == {}


@pytest.mark.slow
def test_diff_of_the_tutorial_pair_agrees_and_reports_the_outside_block(capsys, tmp_path):
    from parity.cli.main import main

    out_json, out_html = tmp_path / "d.json", tmp_path / "d.html"
    rc = main(["diff", KERAS, TORCH, "--steps", "2", "--dtype", "float64", "--quiet-mapping", "--json", str(out_json),
               "--html", str(out_html)])
    out = capsys.readouterr().out
    assert rc == 0, out  # the step is the same: only what lies outside it differs
    block = out[out.index("What this comparison does not cover"):]
    for head in ("batch size its training uses: 32", "seeds: np.random.seed(7)", "augmentation: ImageDataGenerator(",
                 "input scaling: x_train = x_train", "schedule over epochs: LearningRateScheduler(lr_schedule)"):
        assert f"  - {head}" in block, head
    assert "scale of its own data" not in block  # both files' data draw the same batches
    data = json.loads(out_json.read_text())
    covered = data["facts"]["not_covered"]
    _, _, expected = _block(KERAS, TORCH)
    for line in expected[2:]:  # (the first two lines: the general one, and what the data say, from the run)
        assert line in covered, line
    rows = {r["fact"]: r for r in data["facts"]["rows"]}
    built = " (runs as the file is built: it replaces parity's seed)"
    assert rows["seeds"] == {"fact": "seeds", "reference": [f"np.random.seed(7) at keras_cifar_augment.py:21{built}",
                                                             f"tf.random.set_seed(7) at keras_cifar_augment.py:22{built}"],
                             "port": ["torch.manual_seed(1) in main() at torch_cifar_augment.py:40"], "status": "info"}
    jsonschema = pytest.importorskip("jsonschema")
    jsonschema.validate(data, json.load(open(os.path.join(HERE, "..", "docs", "report-schema.json"))))
    page = out_html.read_text()
    assert "schedule over epochs: LearningRateScheduler(lr_schedule)" in page
