"""`write_hparams`: read back with TensorBoard's own readers.

Two readers: `EventAccumulator` on each directory (the raw summaries, parsed
with the hparams plugin's `metadata.parse_*_plugin_data`), and the HParams
plugin's own backend (`get_experiment` / `list_session_groups` handlers over
an `EventMultiplexer` data provider), which is what the dashboard asks.
"""

import os
import subprocess
import sys

import pytest
from tuning_rows import paired_rows

from kreg.tuning import ledger
from kreg.tuning import schema
from kreg.tuning import space
from kreg.tuning.hparams import CONFIG_SUFFIX
from kreg.tuning.hparams import write_hparams

from tensorboard.backend.event_processing import data_provider as tb_data_provider  # isort: skip
from tensorboard.backend.event_processing import event_accumulator  # isort: skip
from tensorboard.backend.event_processing import plugin_event_multiplexer  # isort: skip
from tensorboard import context as tb_context  # isort: skip
from tensorboard.plugins import base_plugin  # isort: skip
from tensorboard.plugins.hparams import api_pb2  # isort: skip
from tensorboard.plugins.hparams import backend_context  # isort: skip
from tensorboard.plugins.hparams import get_experiment  # isort: skip
from tensorboard.plugins.hparams import list_session_groups  # isort: skip
from tensorboard.plugins.hparams import metadata as hp_metadata  # isort: skip
from tensorboard.compat.proto import types_pb2  # isort: skip
from tensorboard.util import tensor_util  # isort: skip

METRIC_TAGS = {
    "final_val_loss",
    "final_val_accuracy",
    "best_val_loss",
    "best_val_accuracy",
    "test_loss",
    "test_accuracy",
    "final_train_accuracy",
    "gap",
    "wall_time",
}  # what paired_rows measures (final_train_loss and best_epoch stay None)


def _failed_row(rate=0.25, seed=7):
    config = {"norm": "batch", "order": "act-norm-drop", "rate": rate, "seed": seed}
    row = {"key": space.run_key(config), "status": "failed", **config}
    row.update({name: None for name in schema.MEASURED_COLUMNS})
    row.update(worker="tuner1", finished_at="2026-01-01T00:00:00+00:00", message="ResourceExhaustedError: OOM")
    return row


def _study_rows():
    rows = paired_rows([0.3, 0.2], [0.1, 0.1])  # 2 seeds x 6 rates x 2 settings = 24 rows
    rows.append(_failed_row())
    return rows


def _accumulator(path):
    acc = event_accumulator.EventAccumulator(path, size_guidance={event_accumulator.TENSORS: 0})
    acc.Reload()
    return acc


def _plugin_content(acc, tag):
    return acc.SummaryMetadata(tag).plugin_data.content


def _read_sessions(logdir):
    """{run dir name: (SessionStartInfo, SessionEndInfo, {tag: (step, value)})} via EventAccumulator."""
    sessions = {}
    for name in sorted(os.listdir(logdir)):
        path = os.path.join(logdir, name)
        if not os.path.isdir(path):
            continue
        acc = _accumulator(path)
        tags = acc.Tags()["tensors"]
        start = hp_metadata.parse_session_start_info_plugin_data(_plugin_content(acc, hp_metadata.SESSION_START_INFO_TAG))
        end = hp_metadata.parse_session_end_info_plugin_data(_plugin_content(acc, hp_metadata.SESSION_END_INFO_TAG))
        scalars = {}
        for tag in tags:
            if tag.startswith("_hparams_/"):
                continue
            assert acc.SummaryMetadata(tag).plugin_data.plugin_name == "scalars"
            (event,) = acc.Tensors(tag)
            # float32: TensorBoard's default (Rust) data server drops float64 scalars.
            assert event.tensor_proto.dtype == types_pb2.DT_FLOAT
            scalars[tag] = (event.step, tensor_util.make_ndarray(event.tensor_proto).item())
        sessions[name] = (start, end, scalars)
    return sessions


def _read_experiment(logdir):
    acc = _accumulator(logdir)
    return hp_metadata.parse_experiment_plugin_data(_plugin_content(acc, hp_metadata.EXPERIMENT_TAG))


def _dashboard(logdir):
    """The HParams plugin's backend, as `tensorboard --logdir LOGDIR` runs it."""
    multiplexer = plugin_event_multiplexer.EventMultiplexer()
    multiplexer.AddRunsFromDirectory(logdir)
    multiplexer.Reload()
    provider = tb_data_provider.MultiplexerDataProvider(multiplexer, logdir)
    context = backend_context.Context(base_plugin.TBContext(logdir=logdir, data_provider=provider, multiplexer=multiplexer))
    ctx = tb_context.RequestContext()
    experiment = get_experiment.Handler(ctx, context, "", api_pb2.GetExperimentRequest()).run()
    request = api_pb2.ListSessionGroupsRequest(
        start_index=0,
        slice_size=10000,
        allowed_statuses=[
            api_pb2.STATUS_UNKNOWN,
            api_pb2.STATUS_SUCCESS,
            api_pb2.STATUS_FAILURE,
            api_pb2.STATUS_RUNNING,
        ],
    )
    groups = list_session_groups.Handler(ctx, context, "", request).run()
    return experiment, groups


def _hparam_values(hparams_map):
    """A protobuf map of google.protobuf.Value to Python values."""
    out = {}
    for name, value in hparams_map.items():
        kind = value.WhichOneof("kind")
        out[name] = {"string_value": value.string_value, "number_value": value.number_value, "bool_value": value.bool_value}[kind]
    return out


def test_experiment_lists_hyperparameters_domains_and_metrics(tmp_path):
    rows = _study_rows()
    assert write_hparams(rows, str(tmp_path)) == 25
    experiment = _read_experiment(str(tmp_path))
    infos = {info.name: info for info in experiment.hparam_infos}
    assert list(infos) == ["norm", "order", "rate", "seed"]
    assert infos["norm"].type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in infos["norm"].domain_discrete.values] == ["batch", "none"]
    assert infos["order"].type == api_pb2.DATA_TYPE_STRING
    assert [v.string_value for v in infos["order"].domain_discrete.values] == ["act-norm-drop", "none", "norm-act-drop"]
    assert infos["rate"].type == api_pb2.DATA_TYPE_FLOAT64
    assert [v.number_value for v in infos["rate"].domain_discrete.values] == [0.0, 0.1, 0.2, 0.25, 0.3, 0.4, 0.5]
    assert infos["seed"].type == api_pb2.DATA_TYPE_FLOAT64  # TensorBoard stores ints as numbers
    assert [v.number_value for v in infos["seed"].domain_discrete.values] == [0, 1, 7]

    metrics = {m.name.tag: m for m in experiment.metric_infos}
    assert set(metrics) == METRIC_TAGS
    titles = {m.column: m.title for m in schema.METRICS}
    for tag, info in metrics.items():
        assert info.name.group == ""
        if tag in titles:
            assert info.display_name == titles[tag]
    assert metrics["final_val_loss"].display_name == "final-epoch validation loss"
    assert metrics["gap"].display_name and metrics["wall_time"].display_name
    # The root event file is the experiment alone, named by its suffix.
    (config_file,) = [f for f in os.listdir(tmp_path) if os.path.isfile(tmp_path / f)]
    assert config_file.startswith("events.out.tfevents.") and config_file.endswith(CONFIG_SUFFIX)


def test_one_session_per_row_with_hparams_and_final_metrics(tmp_path):
    rows = _study_rows()
    write_hparams(rows, str(tmp_path))
    sessions = _read_sessions(str(tmp_path))
    assert sorted(sessions) == sorted(row["key"] for row in rows)
    for row in rows:
        start, end, scalars = sessions[row["key"]]
        assert start.group_name == row["key"]
        expected = {"norm": row["norm"], "order": row["order"] or "none", "rate": row["rate"], "seed": row["seed"]}
        assert _hparam_values(start.hparams) == pytest.approx(expected)
        if row["status"] == "failed":
            assert scalars == {}
            assert end.status == api_pb2.STATUS_FAILURE
            continue
        assert end.status == api_pb2.STATUS_SUCCESS
        assert set(scalars) == METRIC_TAGS
        for tag, (step, value) in scalars.items():
            assert step == row["epochs"] == 3
            assert value == pytest.approx(row[tag], abs=1e-6)
    # Spot-check against the parabola of tuning_rows: no norm, seed 1, rate 0.5.
    row = next(r for r in rows if r["norm"] == "none" and r["seed"] == 1 and r["rate"] == 0.5)
    assert sessions[row["key"]][2]["final_val_loss"][1] == pytest.approx(0.5 + (0.5 - 0.2) ** 2 + 0.01, abs=1e-6)
    assert sessions[row["key"]][2]["final_val_accuracy"][1] == pytest.approx(1.0 - (0.5 + 0.09 + 0.01), abs=1e-6)


def test_dashboard_backend_shows_table_rows(tmp_path):
    rows = _study_rows()
    write_hparams(rows, str(tmp_path))
    experiment, response = _dashboard(str(tmp_path))
    assert [info.name for info in experiment.hparam_infos] == ["norm", "order", "rate", "seed"]
    assert {m.name.tag for m in experiment.metric_infos} == METRIC_TAGS
    assert response.total_size == len(rows) == 25
    by_key = {row["key"]: row for row in rows}
    for group in response.session_groups:
        row = by_key[group.name]
        (session,) = group.sessions
        assert session.name == row["key"]
        values = _hparam_values(group.hparams)
        assert values == pytest.approx({"norm": row["norm"], "order": row["order"] or "none", "rate": row["rate"], "seed": row["seed"]})
        evals = {m.name.tag: m for m in group.metric_values}
        if row["status"] == "failed":
            assert evals == {}
            assert session.status == api_pb2.STATUS_FAILURE
        else:
            assert session.status == api_pb2.STATUS_SUCCESS
            assert set(evals) == METRIC_TAGS
            for tag, metric_value in evals.items():
                assert metric_value.value == pytest.approx(row[tag], abs=1e-6)
                assert metric_value.training_step == 3


def test_writing_twice_replaces_sessions(tmp_path):
    rows = _study_rows()
    assert write_hparams(rows, str(tmp_path)) == 25
    # The second time one run has a new value: it replaces the old session.
    changed = dict(rows[0], final_val_loss=0.123456789)
    rows2 = ledger.Results([changed] + list(rows[1:]), study=rows.study)
    assert write_hparams(rows2, str(tmp_path)) == 25
    entries = os.listdir(tmp_path)
    assert len([e for e in entries if os.path.isdir(tmp_path / e)]) == 25
    assert len([e for e in entries if os.path.isfile(tmp_path / e)]) == 1  # one experiment file
    assert not [e for e in entries if e.startswith(".")]  # no temporary folder left
    for key in (r["key"] for r in rows):
        assert len(os.listdir(tmp_path / key)) == 1  # one event file per session
    sessions = _read_sessions(str(tmp_path))
    assert len(sessions) == 25
    assert sessions[changed["key"]][2]["final_val_loss"][1] == pytest.approx(0.123456789, abs=1e-6)
    _, response = _dashboard(str(tmp_path))
    assert response.total_size == 25
    group = next(g for g in response.session_groups if g.name == changed["key"])
    value = next(m.value for m in group.metric_values if m.name.tag == "final_val_loss")
    assert value == pytest.approx(0.123456789, abs=1e-6)


def test_extra_dimension_and_grid_domain(tmp_path):
    rows = paired_rows([0.2], [0.1], rates=(0.0, 0.2))
    for i, row in enumerate(rows):
        row["tuner/epochs"] = 2 + 2 * (i % 2)
        row["wall_time"] = 12.345678 + i
    # The study's grid widens the domains beyond the finished runs.
    rows.study.update(rates=[0.0, 0.2, 0.4], norms=["none", "batch"], orders=["norm-act-drop"], seeds=[0, 1, 2])
    assert write_hparams(rows, str(tmp_path)) == 4
    experiment = _read_experiment(str(tmp_path))
    infos = {info.name: info for info in experiment.hparam_infos}
    assert list(infos) == ["norm", "order", "rate", "seed", "tuner/epochs"]
    assert [v.number_value for v in infos["rate"].domain_discrete.values] == [0.0, 0.2, 0.4]
    assert [v.number_value for v in infos["seed"].domain_discrete.values] == [0, 1, 2]
    assert [v.string_value for v in infos["order"].domain_discrete.values] == ["none", "norm-act-drop"]
    assert [v.number_value for v in infos["tuner/epochs"].domain_discrete.values] == [2, 4]
    sessions = _read_sessions(str(tmp_path))
    for row in rows:
        start, _, scalars = sessions[row["key"]]
        assert _hparam_values(start.hparams)["tuner/epochs"] == row["tuner/epochs"]
        assert scalars["wall_time"][1] == pytest.approx(row["wall_time"], rel=1e-7)  # float32: 7 digits


def test_empty_rows_and_bad_keys(tmp_path):
    assert write_hparams(ledger.Results(), str(tmp_path / "empty")) == 0
    experiment = _read_experiment(str(tmp_path / "empty"))
    assert [info.name for info in experiment.hparam_infos] == ["norm", "order", "rate", "seed"]
    assert list(experiment.metric_infos) == []
    row = _failed_row()
    with pytest.raises(ValueError, match="share the key"):
        write_hparams([row, dict(row)], str(tmp_path / "dup"))
    with pytest.raises(ValueError, match="plain directory name"):
        write_hparams([dict(row, key="../escape")], str(tmp_path / "bad"))
    assert not os.path.exists(tmp_path / "escape")


def test_import_stays_light(tmp_path):
    # TensorFlow / TensorBoard load when write_hparams runs, not on import.
    code = (
        "import sys, kreg.tuning; before = set(sys.modules); import kreg.tuning.hparams; "
        "new = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in ('tensorflow', 'tensorboard')); "
        "print(new); assert not new"
    )
    # Outside the repository root, whose kreg/ folder would shadow the installed package.
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300, cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "[]"
