"""Demo models for `make run`: small real scikit-learn models logged to the local MLflow server.

Needs the full `mlflow` package and scikit-learn (dev dependencies). Idempotent: a model that
already exists in MLflow is left alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import structlog

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class DemoModel:
    name: str
    team: str
    dataset: str
    description: str
    versions: list[dict[str, object]]


DEMO_MODELS = [
    DemoModel(
        name="fraud-card-payments",
        team="fraud-detection",
        dataset="breast_cancer",
        description=(
            "Scores card payments for fraud in real time.\n\n"
            "- **Input**: payment features from the risk stream\n"
            "- **Output**: probability of fraud\n\n"
            "Owned by the Fraud Detection team; see the model card for limits."
        ),
        versions=[
            {"kind": "logistic", "C": 0.1},
            {"kind": "logistic", "C": 1.0},
            {"kind": "forest", "n_estimators": 30, "max_depth": 4},
            {"kind": "forest", "n_estimators": 60, "max_depth": 6},
        ],
    ),
    DemoModel(
        name="wine-quality",
        team="recommendations",
        dataset="wine",
        description="Classifies wine cultivars; the recommendations team's **sandbox** model.",
        versions=[
            {"kind": "forest", "n_estimators": 10, "max_depth": 2},
            {"kind": "forest", "n_estimators": 40, "max_depth": 5},
            {"kind": "logistic", "C": 0.5},
        ],
    ),
    DemoModel(
        name="churn-propensity",
        team="",
        dataset="breast_cancer",
        description="Predicts which customers are likely to leave. *Nobody has claimed it yet.*",
        versions=[
            {"kind": "logistic", "C": 0.05},
            {"kind": "forest", "n_estimators": 20, "max_depth": 3},
        ],
    ),
]


def _train(dataset: str, spec: dict[str, object]) -> tuple[Any, dict[str, float], dict[str, str]]:
    """A fitted scikit-learn model (an estimator: scikit-learn has no type hints), its test
    metrics and the parameters to log."""
    from sklearn import datasets
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import accuracy_score, f1_score, log_loss, roc_auc_score
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    x, y = getattr(datasets, f"load_{dataset}")(return_X_y=True)
    x_train, x_test, y_train, y_test = train_test_split(x, y, test_size=0.3, random_state=7)
    params = {key: value for key, value in spec.items() if key != "kind"}
    if spec["kind"] == "logistic":
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=2000, **params))
    else:
        model = RandomForestClassifier(random_state=7, **params)
    model.fit(x_train, y_train)
    probabilities = model.predict_proba(x_test)
    predictions = model.predict(x_test)
    binary = probabilities.shape[1] == 2
    metrics = {
        "accuracy": accuracy_score(y_test, predictions),
        "f1": f1_score(y_test, predictions, average="binary" if binary else "macro"),
        "log_loss": log_loss(y_test, probabilities),
        "auc": roc_auc_score(
            y_test, probabilities[:, 1] if binary else probabilities, multi_class="ovr"
        ),
    }
    return model, metrics, {key: str(value) for key, value in spec.items()}


def seed_registry(tracking_uri: str) -> list[str]:
    """Log and register the demo models that MLflow does not have yet; returns their names."""
    import mlflow
    from mlflow.tracking import MlflowClient

    mlflow.set_tracking_uri(tracking_uri)
    client = MlflowClient(tracking_uri=tracking_uri)
    existing = {model.name: model for model in client.search_registered_models(max_results=1000)}
    created = []
    for demo in DEMO_MODELS:
        if demo.name in existing:
            if "challenger" in (existing[demo.name].aliases or {}):
                continue
            client.delete_registered_model(demo.name)  # left half-made by an interrupted seed
        tags = {"portal.team": demo.team} if demo.team else {}
        client.create_registered_model(demo.name, tags=tags, description=demo.description)
        mlflow.set_experiment(f"demo/{demo.name}")
        for number, spec in enumerate(demo.versions, start=1):
            model, metrics, params = _train(demo.dataset, spec)
            with mlflow.start_run(run_name=f"{demo.name}-v{number}"):
                mlflow.log_params(params)
                mlflow.log_metrics(metrics)
                mlflow.sklearn.log_model(
                    model,
                    name="model",
                    registered_model_name=demo.name,
                    pip_requirements=["scikit-learn"],
                    # Trees load through skops only when their node type is trusted; these
                    # models were trained just above, by this process.
                    skops_trusted_types=["sklearn.tree._tree.Tree"],
                )
            if number < len(demo.versions):
                client.set_model_version_tag(demo.name, str(number), "validation_status", "passed")
        latest = len(demo.versions)
        client.set_registered_model_alias(demo.name, "champion", str(latest - 1))
        client.set_registered_model_alias(demo.name, "challenger", str(latest))
        created.append(demo.name)
        log.info("demo_model_registered", name=demo.name, versions=latest)
    return created
