"""The expansion of mlv.yaml's templating (DVC's vars, ${...}, foreach and matrix), through
spec.parse as mlv reads the file, with params files served from a dict."""

from __future__ import annotations

import time
from typing import Any

import pytest

from mlv.core.pipeline import spec, templating
from mlv.errors import PipelineError


def parse(text: str, files: dict[str, str] | None = None) -> spec.Pipeline:
    data = {k: v.encode() for k, v in (files or {}).items()}
    return spec.parse(text, "mlv.yaml", data.get)


def cmds(text: str, files: dict[str, str] | None = None) -> dict[str, str]:
    return {n: s.command for n, s in parse(text, files).stages.items()}


def error(text: str, files: dict[str, str] | None = None) -> str:
    with pytest.raises(PipelineError) as info:
        parse(text, files)
    return str(info.value)


def expand(doc: dict[str, Any], files: dict[str, str] | None = None) -> dict[str, Any]:
    data = {k: v.encode() for k, v in (files or {}).items()}
    return templating.expand(doc, "mlv.yaml", data.get)


PARAMS = {"params.yaml": "lr: 0.1\nepochs: 3\nfast: true\nname: a b\nlayers: [8, 4]\n"}


def test_a_file_without_templating_is_passed_through_without_reading_anything() -> None:
    doc = {"stages": {"t": {"cmd": "echo $HOME {x}"}}}

    def read(rel: str) -> bytes | None:
        raise AssertionError(f"read {rel}")

    assert templating.expand(doc, "mlv.yaml", read) is doc


def test_a_whole_value_keeps_its_type_and_a_string_writes_it_out() -> None:
    doc = expand(
        {
            "stages": {
                "t": {
                    "cmd": "train --lr ${lr} --fast ${fast} ${name}",
                    "always_changed": "${fast}",
                    "desc": "${epochs}",
                }
            }
        },
        PARAMS,
    )
    stage = doc["stages"]["t"]
    assert stage["cmd"] == "train --lr 0.1 --fast true a b"
    assert stage["always_changed"] is True
    assert stage["desc"] == 3
    assert (
        parse("stages:\n  t:\n    cmd: x\n    always_changed: ${fast}\n", PARAMS)
        .stages["t"]
        .always_changed
    )


def test_references_name_keys_and_indexes() -> None:
    files = {"params.yaml": "a:\n  b: [{c: deep}, 2]\n"}
    assert cmds("stages:\n  t:\n    cmd: echo ${a.b[0].c} ${ a.b.1 } ${a.b[1]}\n", files) == {
        "t": "echo deep 2 2"
    }


def test_a_backslash_escapes_a_reference() -> None:
    assert cmds(r"stages:" "\n  t:\n    cmd: echo \\${HOME} ${lr}\n", PARAMS) == {
        "t": "echo ${HOME} 0.1"
    }
    assert cmds("stages:\n  t:\n    cmd: echo \\${HOME}\n") == {"t": "echo ${HOME}"}


def test_a_mapping_in_cmd_becomes_arguments_as_dvc_writes_them() -> None:
    files = {
        "params.yaml": (
            "args:\n  lr: 0.1\n  fast: true\n  slow: false\n  layers: [8, 4]\n"
            "  name: a b\n  opt: {beta: 0.9}\n"
        )
    }
    assert cmds("stages:\n  t:\n    cmd: python t.py ${args}\n", files) == {
        "t": "python t.py --lr 0.1 --fast --layers 8 4 --name 'a b' --opt.beta 0.9"
    }
    assert cmds("stages:\n  t:\n    cmd: ${args}\n", files)["t"].startswith("--lr 0.1")


def test_lists_and_mappings_cannot_be_written_into_other_fields() -> None:
    assert "${layers} is a list" in error("stages:\n  t:\n    cmd: echo ${layers}\n", PARAMS)
    files = {"params.yaml": "d: {a: 1}\n"}
    message = error("stages:\n  t:\n    cmd: x\n    deps:\n      - ${d}\n", files)
    assert "stage 't': deps: ${d} is a mapping" in message
    message = error("stages:\n  t:\n    cmd: x\n    outs:\n      - out/${d}\n", files)
    assert "${d} is a mapping" in message


def test_foreach_names_and_item_key() -> None:
    text = (
        "stages:\n"
        "  s:\n    foreach: [0.1, raw, true]\n    do: {cmd: 'echo ${item}'}\n"
        "  d:\n    foreach: {us: {n: 1}, uk: {n: 2}}\n    do: {cmd: 'echo ${key} ${item.n}'}\n"
    )
    assert cmds(text) == {
        "s@0.1": "echo 0.1",
        "s@raw": "echo raw",
        "s@true": "echo true",
        "d@us": "echo us 1",
        "d@uk": "echo uk 2",
    }
    composite = "stages:\n  c:\n    foreach: [{n: 1}, {n: 2}]\n    do: {cmd: 'echo ${item.n}'}\n"
    assert cmds(composite) == {"c@0": "echo 1", "c@1": "echo 2"}
    # ${key} exists only for a mapping, as in DVC
    message = error("stages:\n  s:\n    foreach: [a]\n    do: {cmd: 'echo ${key}'}\n")
    assert "stage 's@a': cmd: ${key} is not defined" in message


def test_foreach_over_a_reference_and_from_vars() -> None:
    text = (
        "vars:\n  - models: {a: {lr: 1}, b: {lr: 2}}\n"
        "stages:\n  t:\n    foreach: ${models}\n    do:\n      cmd: fit ${key} ${item.lr}\n"
        "      outs:\n        - out/${key}.bin\n"
    )
    pipe = parse(text)
    assert [s.outs[0].path for s in pipe.stages.values()] == ["out/a.bin", "out/b.bin"]
    assert "`foreach:` must be a list or a mapping" in error(
        "stages:\n  t:\n    foreach: ${lr}\n    do: {cmd: x}\n", PARAMS
    )


def test_matrix_names_items_and_keys() -> None:
    text = (
        "stages:\n  t:\n    matrix:\n      model: [cnn, mlp]\n      lr: ${rates}\n"
        "      opt: [{name: adam}]\n"
        "    cmd: fit ${item.model} ${item.lr} ${item.opt.name} ${key}\n"
    )
    assert cmds(text, {"params.yaml": "rates: [0.1, 1]\n"}) == {
        "t@cnn-0.1-opt0": "fit cnn 0.1 adam cnn-0.1-opt0",
        "t@cnn-1-opt0": "fit cnn 1 adam cnn-1-opt0",
        "t@mlp-0.1-opt0": "fit mlp 0.1 adam mlp-0.1-opt0",
        "t@mlp-1-opt0": "fit mlp 1 adam mlp-1-opt0",
    }
    assert "matrix `lr` must be a list" in error("stages:\n  t:\n    matrix: {lr: 1}\n    cmd: x\n")
    assert "not both" in error("stages:\n  t:\n    matrix: {a: [1]}\n    do: {cmd: x}\n")
    assert "`do:` is missing" in error("stages:\n  t:\n    foreach: [1]\n    cmd: x\n")
    assert "a foreach stage holds only" in error(
        "stages:\n  t:\n    foreach: [1]\n    do: {cmd: x}\n    cmd: y\n"
    )


def test_generated_names_are_checked() -> None:
    assert "would make the stage name t@a b" in error(
        "stages:\n  t:\n    foreach: [a b]\n    do: {cmd: x}\n"
    )
    assert "invalid name" in error("stages:\n  -t:\n    foreach: [a]\n    do: {cmd: x}\n")
    assert "generated twice" in error("stages:\n  t:\n    foreach: [1, '1']\n    do: {cmd: x}\n")


def test_vars_files_keys_and_stage_vars_relative_to_wdir() -> None:
    files = {
        "params.yaml": "lr: 0.1\n",
        "conf/a.yaml": "seed: 7\nsplit: 0.2\nother: x\n",
        "sub/local.json": '{"depth": 3}',
    }
    text = (
        "vars:\n  - conf/a.yaml:seed,split\n"
        "stages:\n  t:\n    wdir: ${dir}\n    vars:\n      - local.json\n      - dir: sub\n"
        "    cmd: fit ${lr} ${seed} ${split} ${depth}\n"
    )
    message = error(text, files)  # wdir cannot use the stage's own vars
    assert "${dir} is not defined" in message
    text = text.replace("${dir}", "sub").replace("      - dir: sub\n", "")
    pipe = parse(text, files)
    assert pipe.stages["t"].command == "fit 0.1 7 0.2 3"
    assert pipe.stages["t"].wdir == "sub"
    assert "${other} is not defined" in error(
        "vars:\n  - conf/a.yaml:seed\nstages:\n  t:\n    cmd: ${other}\n", files
    )
    assert "conf/a.yaml has no key 'nope'" in error(
        "vars:\n  - conf/a.yaml:nope\nstages:\n  t:\n    cmd: x\n", files
    )
    assert "params file missing.yaml does not exist" in error(
        "vars:\n  - missing.yaml\nstages:\n  t:\n    cmd: x\n", files
    )


def test_sources_merge_key_by_key_and_refuse_a_value_defined_twice() -> None:
    files = {"params.yaml": "train: {lr: 0.1}\n", "more.yaml": "train: {epochs: 2}\n"}
    text = (
        "vars:\n  - more.yaml\n  - params.yaml\n"
        "stages:\n  t:\n    cmd: ${train.lr} ${train.epochs}\n"
    )
    assert cmds(text, files) == {"t": "0.1 2"}  # params.yaml again: already in
    message = error("vars:\n  - train: {lr: 1}\nstages:\n  t:\n    cmd: x\n", files)
    assert "'train.lr' from vars is already defined by params.yaml" in message
    stage_vars = "stages:\n  t:\n    vars: [{train: {lr: 2}}]\n    cmd: x\n"
    assert "'train.lr' from vars is already defined" in error(stage_vars, files)


def test_mapping_keys_top_level_plots_are_interpolated_checks_are_not() -> None:
    text = (
        "vars:\n  - out: res\n"
        "stages:\n  t:\n    cmd: x\n    outs:\n      - ${out}/a.csv: {cache: false}\n"
        "plots:\n  - ${out}/a.csv: {x: step}\n  - loss:\n      y: {'${out}/a.csv': loss}\n"
        "checks:\n  - acc >= 0.5\n"
    )
    pipe = parse(text)
    assert pipe.stages["t"].outs == (spec.Out("res/a.csv", cache=False),)
    assert [p.id for p in pipe.plots] == ["res/a.csv", "loss"]
    assert dict(pipe.plots[1].props) == {"y": {"res/a.csv": "loss"}}
    assert pipe.checks == ("acc >= 0.5",)


def test_without_a_reader_params_files_are_absent() -> None:
    with pytest.raises(PipelineError, match=r"\$\{lr\} is not defined in any source"):
        spec.parse("stages:\n  t:\n    cmd: ${lr}\n")
    assert spec.parse("vars: [{lr: 1}]\nstages:\n  t:\n    cmd: ${lr}\n").stages["t"].cmd == ("1",)


def test_bounds_on_characters_and_stages() -> None:
    files = {"params.yaml": "big: " + "x" * 1_000_000 + "\n"}
    refs = " ".join(["${big}"] * 20)
    assert "more than 16,000,000 characters" in error(f"stages:\n  t:\n    cmd: {refs}\n", files)
    items = ", ".join(str(i) for i in range(600))
    text = f"stages:\n  a:\n    foreach: [{items}]\n    do: {{cmd: x}}\n" + "".join(
        f"  b{j}:\n    matrix: {{x: [{items}]}}\n    cmd: x\n" for j in range(17)
    )
    assert "templating makes more than 10,000 stages" in error(text)


def test_group_names_select_their_stages() -> None:
    pipe = parse(
        "stages:\n  t:\n    foreach: [1, 2]\n    do: {cmd: x}\n  tt:\n    cmd: y\n"
        "  u:\n    matrix: {a: [1]}\n    cmd: z\n"
    )
    assert pipe.expand_names(["t"]) == ["t@1", "t@2"]
    assert pipe.expand_names(["tt", "t@2", "t"]) == ["tt", "t@2", "t@1"]
    assert pipe.expand_names(["u"]) == ["u@1"]
    for unknown in ("t@3", "t@", "x"):
        with pytest.raises(spec.UnknownStageError, match=r"stages: t@\* \(2\), tt, u@1\)"):
            pipe.expand_names([unknown])


def test_values_that_yaml_cannot_build_are_one_line_errors() -> None:
    for value, why in (("1" * 5000, "a number has too many digits"), ("2020-13-45", "month")):
        assert why in error(f"stages:\n  t:\n    cmd: x\n    desc: {value}\n")


def test_the_cost_of_copying_a_large_context_per_stage_is_bounded() -> None:
    many = "".join(f"k{i}: {i}\n" for i in range(50_000))
    items = ", ".join(str(i) for i in range(5_000))
    text = f"stages:\n  t:\n    foreach: [{items}]\n    do:\n      vars: [{{x: 1}}]\n      cmd: x\n"
    assert "more than 1,000,000 values" in error(text, {"params.yaml": many})
    # without a stage's own vars, nothing is copied: item and key lie over the context
    plain = text.replace("      vars: [{x: 1}]\n", "").replace("cmd: x", "cmd: ${k7} ${item}")
    assert len(parse(plain, {"params.yaml": many}).stages) == 5_000


def test_a_params_file_is_read_once_for_all_the_stages_naming_it() -> None:
    reads: list[str] = []

    def read(rel: str) -> bytes | None:
        reads.append(rel)
        return b"depth: 3\n" if rel == "conf.yaml" else None

    text = (
        "stages:\n  t:\n    foreach: [1, 2, 3]\n"
        "    do:\n      vars: [conf.yaml]\n      cmd: ${depth}\n"
    )
    pipe = spec.parse(text, "mlv.yaml", read)
    assert [s.command for s in pipe.stages.values()] == ["3", "3", "3"]
    assert sorted(reads) == ["conf.yaml", "params.yaml"]


def test_a_shell_variable_in_braces_is_refused_with_the_way_to_write_it() -> None:
    message = error("stages:\n  t:\n    cmd: echo ${HOME}\n")
    assert "stage 't': cmd: ${HOME} is not defined" in message
    assert "for the shell's variable write $HOME or \\${HOME}" in message
    assert cmds("stages:\n  t:\n    cmd: echo $HOME \\${HOME}\n") == {"t": "echo $HOME ${HOME}"}


# ---- adversarial review (issue 18): hostile mlv.yaml and params files ---------------------


def test_many_unclosed_references_are_scanned_in_linear_time() -> None:
    # `${` without a `}`: the reference pattern used to retry from each one, quadratic
    # (100,000 of them, a 200 kB mlv.yaml: a minute)
    start = time.monotonic()
    text = "stages:\n  t:\n    cmd: echo " + "${" * 50_000 + "\n"
    assert cmds(text) == {"t": "echo " + "${" * 50_000}
    text = "stages:\n  t:\n    cmd: echo ${x}" + "${" * 50_000 + "\n"
    assert cmds(text, {"params.yaml": "x: 1\n"}) == {"t": "echo 1" + "${" * 50_000}
    assert time.monotonic() - start < 3


def test_an_index_is_ascii_digits_and_a_huge_one_is_an_error_not_a_crash() -> None:
    files = {"params.yaml": "a: [1, 2, 3, 4]\n"}
    for index in ("9" * 5000, "\u00b2", "\u0663", "-1", "1.0"):
        message = error(f"stages:\n  t:\n    cmd: echo ${{a[{index}]}}\n", files)
        assert "stage 't': cmd: ${a[" in message and "is not" in message
    assert cmds("stages:\n  t:\n    cmd: echo ${a[3]}\n", files) == {"t": "echo 4"}


def test_references_that_insert_nothing_still_count_against_the_bounds() -> None:
    # each reference is a lookup in each of 10,000 stages, even when it writes ""
    files = {"params.yaml": "e: ''\nl: [" + ", ".join(map(str, range(10_000))) + "]\n"}
    text = "stages:\n  t:\n    foreach: ${l}\n    do:\n      cmd: echo ${item}" + "${e}" * 500
    assert "more than 1,000,000 values" in error(text + "\n", files)
    # a mapping of false flags writes nothing into `cmd`, but each one is looked at
    flags = "a:\n" + "".join(f"  k{i}: false\n" for i in range(2_000))
    text = "stages:\n  t:\n    foreach: ${l}\n    do:\n      cmd: echo ${item} ${a}\n"
    assert "more than 1,000,000 values" in error(
        text, {**files, "params.yaml": flags + files["params.yaml"]}
    )


def test_values_yaml_builds_but_no_text_can_hold_are_refused() -> None:
    # a set would be written in a different order by each process: the stage would rerun
    for value in ("!!set {x, y}", "!!binary aGVsbG8=", "!!omap [{x: 1}]"):
        files = {"params.yaml": f"a: {value}\nb: {{k: {value}}}\n"}
        assert "stage 't': cmd: ${a} is a" in error("stages:\n  t:\n    cmd: x ${a}\n", files)
        assert "stage 't': cmd: ${b}" in error("stages:\n  t:\n    cmd: x ${b}\n", files)
    dates = {"params.yaml": "day: 2020-01-02\nb: {day: 2020-01-02}\n"}
    assert cmds("stages:\n  t:\n    cmd: x ${day} ${b}\n", dates) == {
        "t": "x 2020-01-02 --day 2020-01-02"
    }


def test_keys_of_a_mapping_written_into_cmd_are_quoted_for_the_shell() -> None:
    files = {"params.yaml": "a: {'x; touch pwned': 1, lr: 0.1, 'data.dir': d, '$(id)': true}\n"}
    assert cmds("stages:\n  t:\n    cmd: python t.py ${a}\n", files) == {
        "t": "python t.py '--x; touch pwned' 1 --lr 0.1 --data.dir d '--$(id)'"
    }


def test_keys_that_interpolation_makes_equal_are_an_error() -> None:
    files = {"params.yaml": "k: cmd\na: x\nb: x\n"}
    message = error("stages:\n  t:\n    cmd: echo\n    ${k}: echo other\n", files)
    assert "stage 't': `cmd` comes out twice" in message
    message = error("stages:\n  t:\n    cmd: echo\n    outs: [{'${a}': {}, '${b}': {}}]\n", files)
    assert "stage 't': outs: `x` comes out twice" in message


def test_a_vars_entry_naming_the_root_folder_is_refused() -> None:
    for raw in (".", "sub/..", "./"):
        message = error(f"vars: ['{raw}']\nstages:\n  t:\n    cmd: x\n")
        assert f"mlv.yaml: vars: '{raw}' must be a relative path inside the repository" in (message)


def test_errors_reading_a_params_file_name_the_pipeline_and_the_vars_entry() -> None:
    message = error("vars: [c.yaml]\nstages:\n  t:\n    cmd: x\n", {"c.yaml": "[1, 2]\n"})
    assert message.startswith("mlv.yaml: vars: c.yaml: expected a mapping of parameters")

    def read(rel: str) -> bytes | None:
        if rel == "params.yaml":
            return None
        raise PipelineError(f"{rel} is a folder, not a parameters file", "move it away")

    with pytest.raises(PipelineError, match=r"^mlv\.yaml: vars: c\.yaml is a folder"):
        spec.parse("vars: [c.yaml]\nstages:\n  t:\n    cmd: x\n", "mlv.yaml", read)


def test_a_params_file_larger_than_mlv_reads_is_refused_from_any_reader(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    # the workspace reader refuses it before reading; a commit's blob arrives whole
    from mlv.util import localfs

    monkeypatch.setattr(localfs, "SMALL_FILE_LIMIT", 1 << 20)
    files = {"big.yaml": "a: 1\n" + "#" * (1 << 20) + "\n"}
    message = error("vars: [big.yaml]\nstages:\n  t:\n    cmd: echo ${a}\n", files)
    assert message.startswith("mlv.yaml: vars: big.yaml is larger than 1 MiB, not read")


def test_errors_quoting_the_file_stay_one_line_without_control_characters() -> None:
    # a reference, a matrix name, a key and a file name may hold a newline or an escape
    # sequence: written as escapes, the error is one line and the terminal gets no ESC
    for text, shown in (
        ('stages:\n  a:\n    cmd: "echo ${a\\nb\\e[31m}"\n', "${a\\nb\\x1b[31m}"),
        ('stages:\n  a:\n    matrix: {"x\\ny": 1}\n    cmd: x\n', "matrix `x\\ny`"),
        ('stages:\n  a:\n    cmd: x\n    "bad\\nkey": 1\n', "unknown key(s) bad\\nkey"),
        ('vars: ["a\\x07b.yaml"]\nstages:\n  a:\n    cmd: x\n', "params file a\\x07b.yaml"),
    ):
        message = error(text)
        assert shown in message
        assert not any(ord(c) < 32 or ord(c) == 127 for c in message), repr(message)


def test_a_stage_with_vars_and_a_wdir_outside_says_so() -> None:
    for wdir in ("..", "/tmp", "a/../.."):
        text = f"stages:\n  t:\n    wdir: '{wdir}'\n    vars: [{{x: 1}}]\n    cmd: echo ${{x}}\n"
        message = error(text)
        assert f"stage 't': wdir: '{wdir}' must be a relative path inside the repository" in (
            message
        )
