"""Tests for the `evaluate` metric modules in metrics/ (gus, tpr_at_fpr).

Generic checks run over every metrics/* folder (load, doctests, no **kwargs, card, Space files);
the rest check the numbers against hand computations, scikit-learn, numpy and scipy, the null
calibration, and every error path. No network: the modules load from disk with the Hub offline.
"""

import ast
import doctest
import importlib
import inspect
import math
import re
import runpy
from pathlib import Path

import evaluate
import huggingface_hub
import numpy as np
import pytest
from huggingface_hub.repocard import metadata_load
from scipy import stats
from sklearn.metrics import roc_auc_score, roc_curve


ROOT = Path(__file__).resolve().parents[1]
METRICS_DIR = ROOT / "metrics"
METRIC_NAMES = sorted(p.name for p in METRICS_DIR.iterdir() if (p / f"{p.name}.py").is_file())
CARD_SECTIONS = ["How to Use", "Inputs", "Output Values", "Examples", "Limitations and Bias", "Citation"]
# Distribution names of the imports a metric script may use (its requirements.txt must list them).
ALLOWED_IMPORTS = {"datasets": "datasets", "evaluate": "evaluate", "numpy": "numpy", "scipy": "scipy"}


@pytest.fixture(autouse=True)
def offline_at_repo_root(monkeypatch):
    """Every test runs offline, from the repository root (where the docs' load paths resolve)."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    monkeypatch.setenv("HF_EVALUATE_OFFLINE", "1")
    monkeypatch.setenv("GRADIO_ANALYTICS_ENABLED", "False")
    monkeypatch.setattr(evaluate.config, "HF_EVALUATE_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.chdir(ROOT)


@pytest.fixture(scope="module")
def tpr_metric():
    return evaluate.load(str(METRICS_DIR / "tpr_at_fpr"), keep_in_memory=True)


@pytest.fixture(scope="module")
def gus_metric():
    return evaluate.load(str(METRICS_DIR / "gus"), keep_in_memory=True)


@pytest.fixture(scope="module")
def gus_vectors():
    return evaluate.load(str(METRICS_DIR / "gus"), "vectors", keep_in_memory=True)


def _script_module(metric):
    return importlib.import_module(type(metric).__module__)


def _doctest_examples(text):
    """(source, want) of every doctest example in `text`, indentation removed."""
    return [(e.source, e.want) for e in doctest.DocTestParser().get_examples(inspect.cleandoc(text))]


def _card(name):
    return (METRICS_DIR / name / "README.md").read_text(encoding="utf-8")


def _card_sections(text):
    """{heading: body} for every markdown heading (any level) of the card."""
    parts = re.split(r"^#{1,6} +(.+?) *$", text, flags=re.M)
    return {heading: body for heading, body in zip(parts[1::2], parts[2::2])}


def _python_blocks(text):
    return re.findall(r"^```python\n(.*?)^```", text, flags=re.M | re.S)


# --------------------------------------------------------------------------------------------
# Generic checks over metrics/*
# --------------------------------------------------------------------------------------------


def test_both_metrics_are_found():
    assert set(METRIC_NAMES) >= {"gus", "tpr_at_fpr"}, METRIC_NAMES


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_load_runs_doctests_and_has_no_var_kwargs(name):
    metric = evaluate.load(f"metrics/{name}")
    module = _script_module(metric)
    parameters = inspect.signature(type(metric)._compute).parameters.values()
    assert all(p.kind != p.VAR_KEYWORD for p in parameters), f"{name}._compute must not take **kwargs"
    results = doctest.testmod(module, raise_on_error=False, optionflags=doctest.NORMALIZE_WHITESPACE)
    assert results.failed == 0, f"{results.failed} doctest(s) of {name} failed (run with -s to see them)"
    assert results.attempted > 1
    assert len(re.findall(r"^\s*Example \d+:", module._KWARGS_DESCRIPTION, flags=re.M)) >= 2


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_loads_by_name_from_inside_metrics(name, monkeypatch):
    monkeypatch.chdir(METRICS_DIR)
    metric = evaluate.load(name)
    assert metric.name == name


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_script_is_self_contained(name):
    tree = ast.parse((METRICS_DIR / name / f"{name}.py").read_text(encoding="utf-8"))
    imported = {alias.name.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.Import) for alias in node.names}
    imported |= {node.module.split(".")[0] for node in ast.walk(tree) if isinstance(node, ast.ImportFrom) and node.module}
    third_party = imported - {"math", "re", "os", "typing"}
    assert "hf_unlearn" not in imported, f"{name}.py must not import hf_unlearn"
    assert third_party <= set(ALLOWED_IMPORTS), f"{name}.py imports {sorted(third_party - set(ALLOWED_IMPORTS))}"
    requirements = (METRICS_DIR / name / "requirements.txt").read_text(encoding="utf-8")
    listed = {re.split(r"[=<>~! ]", line.strip())[0].lower() for line in requirements.splitlines() if line.strip()}
    missing = {ALLOWED_IMPORTS[m] for m in third_party} - listed
    assert not missing, f"{name}/requirements.txt does not list {sorted(missing)}"


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_card_front_matter_and_sections(name):
    meta = metadata_load(METRICS_DIR / name / "README.md")
    for key in ["title", "emoji", "colorFrom", "colorTo", "sdk", "sdk_version", "app_file", "pinned", "tags"]:
        assert key in meta, f"{name}/README.md front matter lacks {key}"
    assert meta["sdk"] == "gradio" and meta["app_file"] == "app.py" and meta["pinned"] is False
    assert {"evaluate", "metric"} <= set(meta["tags"])
    requirements = (METRICS_DIR / name / "requirements.txt").read_text(encoding="utf-8")
    pin = re.search(r"^gradio==(\S+)$", requirements, flags=re.M)
    assert pin, f"{name}/requirements.txt must pin gradio=="
    assert str(meta["sdk_version"]) == pin.group(1), "Space sdk_version must match the gradio pin"

    sections = _card_sections(_card(name))
    for heading in CARD_SECTIONS:
        assert heading in sections, f"{name}/README.md lacks a '{heading}' section"
        assert sections[heading].strip(), f"{name}/README.md has an empty '{heading}' section"


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_card_examples_are_the_docstring_examples(name):
    module = _script_module(evaluate.load(f"metrics/{name}"))
    docstring_examples = module._KWARGS_DESCRIPTION.split("Examples:", 1)[1]
    card_examples = _card_sections(_card(name))["Examples"]
    card_code = "\n".join(_python_blocks(card_examples))

    assert _doctest_examples(card_code) == _doctest_examples(docstring_examples), (
        f"the code in {name}/README.md 'Examples' must be the docstring's examples"
    )
    titles = re.findall(r"(Example \d+:.*?)(?=\n\s*>>>)", docstring_examples, flags=re.S)
    assert len(titles) >= 2
    card_text = " ".join(card_examples.split())
    for title in titles:
        assert " ".join(title.split()) in card_text, f"card lacks the description '{title.strip()}'"


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_card_code_runs(name):
    """Every python block of the card (How to Use and Examples) runs as a doctest."""
    blocks = [b for b in _python_blocks(_card(name)) if ">>>" in b]
    assert len(blocks) >= 3, f"{name}/README.md should have How to Use plus >= 2 examples as doctests"
    parser, runner = doctest.DocTestParser(), doctest.DocTestRunner(optionflags=doctest.NORMALIZE_WHITESPACE)
    for i, block in enumerate(blocks):
        runner.run(parser.get_doctest(block, {}, f"{name}/README.md block {i}", None, 0))
    assert runner.summarize(verbose=False).failed == 0, f"a code block of {name}/README.md failed"


@pytest.mark.parametrize("name", METRIC_NAMES)
def test_space_app_builds_and_computes(name):
    import pandas as pd

    namespace = runpy.run_path(str(METRICS_DIR / name / "app.py"), run_name="app")  # no launch
    assert type(namespace["demo"]).__name__ == "Interface"
    table = pd.DataFrame({"predictions": [0.9, 0.8, 0.7, 0.6, 0.5, 0.4], "references": [1, 1, 0, 1, 0, 0]})
    args = (table,) if name == "gus" else (table, "0.5")
    results = namespace["compute"](*args)
    assert results["gus" if name == "gus" else "tpr_at_fpr_0.5"] is not None


# --------------------------------------------------------------------------------------------
# tpr_at_fpr: values
# --------------------------------------------------------------------------------------------


def _sklearn_tpr_at_fpr(members, nulls, a):
    """Reference: roc_curve(drop_intermediate=False) read at the last point with fpr <= a."""
    y = np.r_[np.ones(len(members)), np.zeros(len(nulls))]
    fpr, tpr, thresholds = roc_curve(y, np.r_[members, nulls], drop_intermediate=False)
    i = np.flatnonzero(fpr <= a)[-1]
    return float(tpr[i]), float(thresholds[i])


def test_tpr_known_values(tpr_metric):
    # nulls 0.7, 0.5, 0.3, 0.2; members 0.9, 0.8, 0.6, 0.4.
    # a=0.25: at most 1 null >= t -> t = 0.6 (only 0.7 above) -> members >= 0.6: 3/4.
    # a=0.5: at most 2 nulls >= t -> t = 0.4 -> all 4 members. AUC: (4 + 4 + 3 + 2) / 16.
    results = tpr_metric.compute(
        predictions=[0.9, 0.8, 0.7, 0.6, 0.5, 0.4, 0.3, 0.2], references=[1, 1, 0, 1, 0, 1, 0, 0], fpr=[0.25, 0.5]
    )
    assert results == {
        "tpr_at_fpr_0.25": 0.75,
        "tpr_at_fpr_0.5": 1.0,
        "auc": 13 / 16,
        "num_positives": 4,
        "num_negatives": 4,
        "thresholds": {"0.25": 0.6, "0.5": 0.4},
        "unresolved": {},
        "unstable": results["unstable"],  # 0.25 * 4 and 0.5 * 4 nulls < 10: both listed (checked below)
        "ci95": results["ci95"],  # checked in test_tpr_intervals_and_unstable
    }
    assert set(results["unstable"]) == {"0.25", "0.5"}
    assert all(type(results[k]) is float for k in ["tpr_at_fpr_0.25", "tpr_at_fpr_0.5", "auc"])
    assert all(type(results[k]) is int for k in ["num_positives", "num_negatives"])


def test_tpr_ties_and_no_qualifying_threshold(tpr_metric):
    # Two nulls tie at the top: every observed t has FPR >= 2/4 > 0.25 -> t = inf, TPR = 0.
    results = tpr_metric.compute(predictions=[0.0, 1.0, 5.0, 5.0, 1.0, 2.0], references=[1, 1, 0, 0, 0, 0], fpr=0.25)
    assert results["tpr_at_fpr_0.25"] == 0.0 and results["thresholds"]["0.25"] == math.inf
    # Member 1.0 ties with null 1.0: pairs won 0 + (0.5 + 0) -> AUC = 0.5 / 8.
    assert results["auc"] == 0.5 / 8

    # All scores equal: AUC 0.5, and at FPR 0.5 nothing qualifies.
    results = tpr_metric.compute(predictions=[1.0] * 4, references=[1, 1, 0, 0], fpr=0.5)
    assert results["auc"] == 0.5 and results["tpr_at_fpr_0.5"] == 0.0

    # Perfect separation: t = 2.0 (one null at or above), both members called.
    results = tpr_metric.compute(predictions=[3.0, 4.0, 1.0, 2.0], references=[1, 1, 0, 0], fpr=0.5)
    assert results["tpr_at_fpr_0.5"] == 1.0 and results["thresholds"]["0.5"] == 2.0 and results["auc"] == 1.0


def test_tpr_key_format(tpr_metric):
    rng = np.random.default_rng(0)
    scores = rng.normal(size=200).tolist()
    results = tpr_metric.compute(predictions=scores, references=[1] * 100 + [0] * 100, fpr=[0.05, 1e-4, 1e-5, 0.1])
    for key in ["tpr_at_fpr_0.05", "tpr_at_fpr_0.0001", "tpr_at_fpr_1e-05", "tpr_at_fpr_0.1"]:
        assert key in results, f"missing {key} in {sorted(results)}"
    assert set(results["thresholds"]) == {"0.05", "0.0001", "1e-05", "0.1"}
    default = tpr_metric.compute(predictions=scores, references=[1] * 100 + [0] * 100)
    assert {"tpr_at_fpr_0.01", "tpr_at_fpr_0.001"} <= set(default), "default fpr list is [0.01, 0.001]"


@pytest.mark.parametrize("seed", [0, 1, 2, 3, 4])
def test_tpr_and_auc_agree_with_sklearn(tpr_metric, seed):
    rng = np.random.default_rng(seed)
    m, n = int(rng.integers(50, 400)), int(rng.integers(100, 500))
    # Rounding to one decimal makes many ties, within and across the two groups.
    members = np.round(rng.normal(0.7, 1.0, size=m), 1)
    nulls = np.round(rng.normal(0.0, 1.0, size=n), 1)
    rates = [0.01, 0.02, 0.05, 0.1, 0.3, 0.9]
    results = tpr_metric.compute(
        predictions=np.r_[members, nulls], references=np.r_[np.ones(m, int), np.zeros(n, int)], fpr=rates
    )
    for a in rates:
        expected_tpr, expected_threshold = _sklearn_tpr_at_fpr(members, nulls, a)
        assert results[f"tpr_at_fpr_{a!r}"] == pytest.approx(expected_tpr, abs=1e-12), f"seed {seed}, fpr {a}"
        assert results["thresholds"][repr(a)] == expected_threshold, f"seed {seed}, fpr {a}"
    expected_auc = roc_auc_score(np.r_[np.ones(m), np.zeros(n)], np.r_[members, nulls])
    assert results["auc"] == pytest.approx(expected_auc, abs=1e-12)
    assert results["num_positives"] == m and results["num_negatives"] == n


def test_tpr_unresolvable_fpr(tpr_metric):
    rng = np.random.default_rng(3)
    scores = rng.normal(size=80)
    results = tpr_metric.compute(predictions=scores, references=[1] * 30 + [0] * 50, fpr=[0.01, 0.02, 0.5])
    # 50 negatives: FPR steps of 1/50 = 0.02, so 0.01 cannot be resolved; 0.02 can.
    assert results["tpr_at_fpr_0.01"] is None
    assert results["thresholds"]["0.01"] is None
    assert set(results["unresolved"]) == {"0.01"}
    assert "1/50" in results["unresolved"]["0.01"]
    assert isinstance(results["tpr_at_fpr_0.02"], float) and isinstance(results["tpr_at_fpr_0.5"], float)


@pytest.mark.parametrize("seed", [10, 11, 12])
def test_null_calibration(tpr_metric, gus_metric, seed):
    """Members and nulls both N(0, 1): no dependence, so GUS ~ 0 and TPR@FPR=0.01 ~ 0.01."""
    rng = np.random.default_rng(seed)
    m, n = 2000, 20000
    members, nulls = rng.normal(size=m), rng.normal(size=n)
    scores, labels = np.r_[members, nulls], np.r_[np.ones(m, int), np.zeros(n, int)]

    gus = gus_metric.compute(predictions=scores, references=labels)
    assert abs(gus["gus"]) < 4 * gus["gus_stderr"], (
        f"null GUS {gus['gus']:.4f} should be within 4 standard errors ({gus['gus_stderr']:.4f}) of 0: "
        "a 4-sigma excursion has probability about 6e-5 under the null"
    )
    assert gus["num_members"] == m and gus["num_nulls"] == n

    tpr = tpr_metric.compute(predictions=scores, references=labels, fpr=[0.01])["tpr_at_fpr_0.01"]
    # Under the null the number of members above the threshold is about Binomial(m, 0.01); the
    # threshold itself is estimated from 20,000 nulls (sd of its FPR ~ 0.0007), a small extra.
    low, high = stats.binom.ppf([0.0005, 0.9995], m, 0.01) / m
    slack = 3.29 * math.sqrt(0.01 * 0.99 / n)
    assert low - slack <= tpr <= high + slack, (
        f"null TPR@FPR=0.01 = {tpr:.4f} should lie in the two-sided 99.9% binomial interval "
        f"[{low:.4f}, {high:.4f}] for {m} members at p = 0.01 (+/- {slack:.4f} for the threshold estimate)"
    )


# --------------------------------------------------------------------------------------------
# gus: values
# --------------------------------------------------------------------------------------------


def test_gus_known_values(gus_metric):
    # members 1, 2, 3: mean 2, sample sd 1, stderr 1/sqrt(3). nulls -1, 1: mean 0, sd sqrt(2).
    results = gus_metric.compute(predictions=[1.0, 2.0, 3.0, -1.0, 1.0], references=[1, 1, 1, 0, 0])
    se = 1 / math.sqrt(3)
    assert results["gus"] == 2.0
    assert results["gus_stderr"] == pytest.approx(se)
    assert results["gus_ci95"] == pytest.approx([2 - 1.96 * se, 2 + 1.96 * se])
    assert results["null_mean"] == 0.0 and results["null_std"] == pytest.approx(math.sqrt(2))
    welch = stats.ttest_ind([1.0, 2.0, 3.0], [-1.0, 1.0], equal_var=False).pvalue
    assert results["p_value"] == pytest.approx(welch) and results["p_value_test"] == "welch_t"
    assert results["num_members"] == 3 and results["num_nulls"] == 2
    assert isinstance(results["gus_ci95"], list) and all(type(x) is float for x in results["gus_ci95"])


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_gus_statistics_match_numpy_and_scipy(gus_metric, seed):
    rng = np.random.default_rng(seed)
    members, nulls = rng.normal(0.3, 1.2, size=150), rng.normal(0.0, 1.0, size=400)
    results = gus_metric.compute(predictions=np.r_[members, nulls], references=[1] * 150 + [0] * 400)
    se = members.std(ddof=1) / np.sqrt(members.size)
    assert results["gus"] == pytest.approx(members.mean(), rel=1e-12)
    assert results["gus_stderr"] == pytest.approx(se, rel=1e-12)
    assert results["gus_ci95"] == pytest.approx([members.mean() - 1.96 * se, members.mean() + 1.96 * se], rel=1e-12)
    assert results["null_mean"] == pytest.approx(nulls.mean(), rel=1e-12)
    assert results["null_std"] == pytest.approx(nulls.std(ddof=1), rel=1e-12)
    assert results["p_value"] == pytest.approx(stats.ttest_ind(members, nulls, equal_var=False).pvalue, rel=1e-9)

    alone = gus_metric.compute(predictions=members, references=[1] * 150)
    assert alone["null_mean"] is None and alone["null_std"] is None and alone["num_nulls"] == 0
    assert alone["p_value_test"] == "z"
    assert alone["p_value"] == pytest.approx(2 * stats.norm.sf(abs(members.mean() / se)), rel=1e-9)


def test_gus_vectors_sign_convention_and_formula(gus_vectors):
    eps = 0.5
    xi = np.array([[3.0, 4.0, 0.0], [1.0, 0.0, 0.0], [0.0, 2.0, 0.0]], dtype=np.float32)
    # g = -xi: the loss gradient points against the noise ("learned the noise") -> I = ||xi|| / eps.
    # g = +xi gives -||xi|| / eps; g orthogonal to xi gives 0.
    g = np.stack([-xi[0], xi[1], np.array([5.0, 0.0, 0.0], np.float32)])
    results = gus_vectors.compute(predictions=g, references=xi, epsilon=eps)
    assert results["scores"] == [5.0 / eps, -1.0 / eps, 0.0]
    assert results["gus"] == pytest.approx((10.0 - 2.0 + 0.0) / 3)
    assert results["num_nulls"] == 0 and results["null_mean"] is None and results["p_value_test"] == "z"

    rng = np.random.default_rng(5)
    g = rng.normal(size=(20, 12)).astype(np.float32)
    xi = (0.1 * rng.normal(size=(20, 12))).astype(np.float32)
    g64, xi64 = g.astype(np.float64), xi.astype(np.float64)
    expected = -(g64 * xi64).sum(axis=1) / (0.1 * np.linalg.norm(g64, axis=1))
    results = gus_vectors.compute(predictions=g.tolist(), references=xi.tolist(), epsilon=0.1)
    np.testing.assert_allclose(results["scores"], expected, rtol=1e-9)
    assert results["gus"] == pytest.approx(expected.mean(), rel=1e-9)
    assert results["gus_stderr"] == pytest.approx(expected.std(ddof=1) / np.sqrt(20), rel=1e-9)


# --------------------------------------------------------------------------------------------
# Error paths: each message names the argument and the problem
# --------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "predictions, references, fpr, match",
    [
        ([0.1, 0.2, float("nan"), 0.4], [1, 0, 1, 0], None, r"predictions.*nan.*index 2"),
        ([0.1, float("inf"), 0.3, 0.4], [1, 0, 1, 0], None, r"predictions.*inf.*index 1"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 2, 0], None, r"references.*1.*or 0.*got 2 at index 2"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, -1, 0], None, r"references.*got -1"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 0.5, 0], None, r"references.*got 0.5 at index 2"),
        ([0.1, 0.2, 0.3], [1, 0], None, r"Mismatch in the number of predictions \(3\) and references \(2\)"),
        ([0.1, 0.2, 0.3], [1, 1, 1], None, r"at least one 1 \(member\) and one 0.*0 non-member"),
        ([0.1, 0.2, 0.3], [0, 0, 0], None, r"at least one 1 \(member\).*got 0 member"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], [0.0], r"fpr.*\(0, 1\).*got 0.0"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], [0.01, 1.0], r"fpr.*\(0, 1\).*got 1.0"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], 1.5, r"fpr.*\(0, 1\).*got 1.5"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], [-0.1], r"fpr.*got -0.1"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], [float("nan")], r"fpr.*got nan"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], [], r"fpr.*empty"),
        ([0.1, 0.2, 0.3, 0.4], [1, 0, 1, 0], ["0.1"], r"fpr.*got '0.1'"),
    ],
)
def test_tpr_errors(tpr_metric, predictions, references, fpr, match):
    with pytest.raises(ValueError, match=match):
        tpr_metric.compute(predictions=predictions, references=references, fpr=fpr)


def test_labels_are_checked_before_the_int32_cast(tpr_metric, gus_metric):
    """Arrow would truncate 0.5 to 0; add() and add_batch() reject it first. Bools are labels."""
    for metric in (tpr_metric, gus_metric):
        with pytest.raises(ValueError, match=r"references.*got 0.5"):
            metric.add(prediction=0.3, reference=0.5)
        with pytest.raises(ValueError, match=r"references.*got 0.5"):
            metric.add_batch(predictions=[0.3, 0.1], references=[1.0, 0.5])
    results = tpr_metric.compute(predictions=[3.0, 4.0, 1.0, 2.0], references=[True, True, False, False], fpr=0.5)
    assert results["num_positives"] == 2 and results["auc"] == 1.0
    for prediction, reference in zip([3.0, 4.0, 1.0, 2.0], [1, 1, 0, 0]):
        tpr_metric.add(prediction=prediction, reference=reference)
    assert tpr_metric.compute(fpr=0.5)["tpr_at_fpr_0.5"] == 1.0


def test_length_mismatch_message_of_compute_itself(tpr_metric, gus_metric):
    """_compute checks lengths too (evaluate's own check runs only through compute())."""
    for metric in (tpr_metric, gus_metric):
        with pytest.raises(ValueError, match=r"same length; got 3 predictions and 2 references"):
            metric._compute(predictions=[0.1, 0.2, 0.3], references=[1, 0])


@pytest.mark.parametrize(
    "predictions, references, kwargs, match",
    [
        ([1.0, float("nan"), 0.0], [1, 1, 0], {}, r"predictions.*nan.*index 1"),
        ([1.0, 2.0, 0.0], [1, 1, 3], {}, r"references.*got 3 at index 2"),
        ([1.0, 2.0, 0.0], [1.0, 1.0, 0.7], {}, r"references.*got 0.7 at index 2"),
        ([1.0, 2.0, 0.0], [1, 1], {}, r"Mismatch in the number of predictions \(3\) and references \(2\)"),
        ([1.0, 0.0, 0.5], [1, 0, 0], {}, r"at least 2 member.*got 1"),
        ([1.0, 2.0, 0.5], [1, 1, 0], {}, r"1 null score.*at least 2"),
        ([1.0, 2.0], [1, 1], {"epsilon": 0.1}, r"epsilon is only used by the 'vectors'.*epsilon=0.1"),
    ],
)
def test_gus_errors(gus_metric, predictions, references, kwargs, match):
    with pytest.raises(ValueError, match=match):
        gus_metric.compute(predictions=predictions, references=references, **kwargs)


GOOD_G = [[-1.0, 0.0], [0.0, -2.0], [3.0, 4.0]]
GOOD_XI = [[0.5, 0.0], [0.0, 0.5], [0.25, -0.5]]


@pytest.mark.parametrize(
    "gradients, noises, epsilon, match",
    [
        (GOOD_G, GOOD_XI, None, r"epsilon is required"),
        (GOOD_G, GOOD_XI, 0.0, r"epsilon.*> 0.*got 0.0"),
        (GOOD_G, GOOD_XI, -0.5, r"epsilon.*> 0.*got -0.5"),
        (GOOD_G, GOOD_XI, float("inf"), r"epsilon.*got inf"),
        (GOOD_G, GOOD_XI, "0.5", r"epsilon.*got '0.5'"),
        (GOOD_G, [[0.5, 0.0], [0.0, 0.5, 1.0], [0.25, -0.5]], 0.5, r"row 1.*predictions\[1\]\) has 2 values.*references\[1\]\) has 3"),
        ([[-1.0, 0.0], [0.0, -2.0], [3.0, float("nan")]], GOOD_XI, 0.5, r"row 2.*predictions\[2\].*non-finite"),
        (GOOD_G, [[0.5, 0.0], [float("inf"), 0.5], [0.25, -0.5]], 0.5, r"row 1.*references\[1\].*non-finite"),
        (GOOD_G[:1], GOOD_XI[:1], 0.5, r"at least 2 member.*got 1"),
        (GOOD_G, GOOD_XI[:2], 0.5, r"Mismatch in the number of predictions \(3\) and references \(2\)"),
    ],
)
def test_gus_vectors_errors(gus_vectors, gradients, noises, epsilon, match):
    with pytest.raises(ValueError, match=match):
        gus_vectors.compute(predictions=gradients, references=noises, epsilon=epsilon)


def test_gus_vectors_zero_gradient_scores_zero_like_the_library(gus_vectors):
    """Item 6 of issue 8: a vanished gradient scores 0 in the module exactly as in hf_unlearn.scoring."""
    torch = pytest.importorskip("torch")
    from hf_unlearn.scoring import scores_from_gradients

    rng = np.random.default_rng(7)
    g = rng.normal(size=(5, 12)).astype(np.float32)
    g[2] = 0.0
    xi = (0.2 * rng.normal(size=(5, 12))).astype(np.float32)
    library, zero = scores_from_gradients(torch.from_numpy(g), torch.from_numpy(xi), 0.2)
    results = gus_vectors.compute(predictions=g, references=xi, epsilon=0.2)
    assert zero == 1 and results["zero_gradients"] == 1
    assert results["scores"][2] == 0.0 == library[2].item()
    np.testing.assert_allclose(results["scores"], library.numpy(), rtol=1e-5, atol=1e-6)
    assert results["gus"] == pytest.approx(float(library.double().mean()), rel=1e-5)
    none = gus_vectors.compute(predictions=GOOD_G, references=GOOD_XI, epsilon=0.5)
    assert none["zero_gradients"] == 0


def test_tpr_exact_null_threshold_and_wilson(tpr_metric):
    """exact_null="normal": TPR at Phi^-1(1 - a), Wilson interval; empirical keys unchanged."""
    members = [3.5, 3.1, 2.4, 2.3, 1.0, -0.5]  # Phi^-1(0.99) = 2.3263, Phi^-1(0.999) = 3.0902
    nulls = np.random.default_rng(0).normal(size=3000).tolist()
    labels = [1] * 6 + [0] * 3000
    plain = tpr_metric.compute(predictions=members + nulls, references=labels)
    results = tpr_metric.compute(predictions=members + nulls, references=labels, exact_null="normal")
    assert results["tpr_at_fpr_0.01_exact"] == 3 / 6 and results["tpr_at_fpr_0.001_exact"] == 2 / 6
    assert results["thresholds_exact"] == pytest.approx({"0.01": stats.norm.isf(0.01), "0.001": stats.norm.isf(0.001)})
    for key in ("tpr_at_fpr_0.01", "tpr_at_fpr_0.001", "auc", "thresholds", "unresolved"):
        assert results[key] == plain[key], key
    assert set(results["unstable"]) == set(plain["unstable"]) == {"0.001"}
    assert "read tpr_at_fpr_0.001_exact" in results["unstable"]["0.001"]
    assert "tpr_at_fpr_0.01_exact" not in plain and "thresholds_exact" not in plain
    # Wilson for 3/6, by hand: centre (0.5 + z^2/12) / (1 + z^2/6), half z sqrt(0.25/6 + z^2/144) / (1 + z^2/6)
    z = 1.96
    centre, half = (0.5 + z * z / 12) / (1 + z * z / 6), z * math.sqrt(0.25 / 6 + z * z / 144) / (1 + z * z / 6)
    assert results["ci95"]["tpr_at_fpr_0.01_exact"] == pytest.approx([centre - half, centre + half])
    with pytest.raises(ValueError, match=r"exact_null.*'normal'.*got 'gaussian'"):
        tpr_metric.compute(predictions=members + nulls, references=labels, exact_null="gaussian")


def test_tpr_intervals_and_unstable(tpr_metric):
    """ci95 holds the estimate, is None when unresolved; unstable lists a with a * n < 10."""
    rng = np.random.default_rng(1)
    members, nulls = rng.normal(1.5, 1, 60), rng.normal(size=1500)
    results = tpr_metric.compute(
        predictions=np.r_[members, nulls], references=[1] * 60 + [0] * 1500, fpr=[0.01, 0.001, 0.0005]
    )
    assert set(results["unstable"]) == {"0.001", "0.0005"}, results["unstable"]  # 15 >= 10; 1.5, 0.75 < 10
    assert "10000 non-member scores" in results["unstable"]["0.001"]
    assert results["ci95"]["tpr_at_fpr_0.0005"] is None and results["tpr_at_fpr_0.0005"] is None
    for a in ("0.01", "0.001"):
        lo, hi = results["ci95"][f"tpr_at_fpr_{a}"]
        assert 0.0 <= lo <= results[f"tpr_at_fpr_{a}"] <= hi <= 1.0, (a, lo, hi)
    # 0.001 * 1500 = 1.5 nulls expected above: the lowest plausible count is 0, so the lower end is 0
    assert results["ci95"]["tpr_at_fpr_0.001"][0] == 0.0


def test_gus_unknown_config():
    with pytest.raises(ValueError, match=r"Unknown configuration 'vector'.*\['default', 'vectors'\]"):
        evaluate.load("metrics/gus", "vector")
