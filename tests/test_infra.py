"""Deployment artefacts, checked offline: manifests, overlays, Terraform, OpenFaaS, Dockerfile — and the
cross-checks between them and the code (every function deployed, every event type routed, every
Trigger dead-lettered, every required setting provided)."""

from __future__ import annotations

import importlib.util
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from dvci import manifests as mf

ROOT = Path(__file__).resolve().parent.parent
KNATIVE = ROOT / "infra" / "knative"
OVERLAYS = ("dev", "staging", "production")
TERRAFORM = ROOT / "infra" / "terraform"


def function_folders() -> list[str]:
    return sorted(p.parent.name for p in (ROOT / "functions").glob("*/main.py"))


@cache
def function_app(folder: str) -> Any:
    spec = importlib.util.spec_from_file_location(f"fn_{folder}", ROOT / "functions" / folder / "main.py")
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module.app


@cache
def build(overlay: str) -> list[dict[str, Any]]:
    """`kubectl kustomize` of an overlay (kustomize is part of kubectl)."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        pytest.skip("kubectl (with its built-in kustomize) is not installed")
    out = subprocess.run([kubectl, "kustomize", str(KNATIVE / "overlays" / overlay)], capture_output=True,
                         text=True, check=False)
    assert out.returncode == 0, out.stderr
    return [d for d in yaml.safe_load_all(out.stdout) if d]


def of_kind(docs: list[dict[str, Any]], kind: str) -> list[dict[str, Any]]:
    return [d for d in docs if d.get("kind") == kind]


def test_every_yaml_file_parses():
    files = [p for p in (ROOT / "infra").rglob("*.y*ml") if "templates" not in p.parts]
    assert len(files) >= 10
    for path in files:
        list(yaml.safe_load_all(path.read_text()))


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_overlays_build(overlay):
    docs = build(overlay)
    kinds = {d["kind"] for d in docs}
    assert {"Broker", "Service", "Trigger", "ConfigMap", "SinkBinding"} <= kinds


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_function_has_a_service_and_every_event_type_a_trigger(overlay):
    docs = build(overlay)
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    by_folder = {s["metadata"]["labels"]["dvci.gov.vn/function"]: name for name, s in services.items()}
    for folder in function_folders():
        assert folder in by_folder, f"functions/{folder} has no Knative Service in overlay {overlay}"
        source = services[by_folder[folder]]["spec"]["template"]["spec"]["containers"][0]["env"]
        assert {"name": "FUNCTION_SOURCE", "value": f"functions/{folder}/main.py"} in source
        triggers = of_kind(docs, "Trigger")
        for event_type in function_app(folder).event_types:
            if event_type == "dev.knative.sources.ping":
                continue  # PingSources sink straight into the Service (checked below)
            routed = [t for t in triggers if t["spec"]["subscriber"]["ref"]["name"] == by_folder[folder]
                      and t["spec"].get("filter", {}).get("attributes", {}).get("type") == event_type]
            assert routed, f"no Trigger routes {event_type} to {by_folder[folder]} in {overlay}"


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_trigger_subscriber_exists_and_everything_dead_letters(overlay):
    docs = build(overlay)
    services = {s["metadata"]["name"] for s in of_kind(docs, "Service")}
    brokers = {b["metadata"]["name"]: b for b in of_kind(docs, "Broker")}
    sinks = {k["metadata"]["name"] for k in of_kind(docs, "KafkaSink")}
    for broker in brokers.values():
        dls = broker["spec"]["delivery"]["deadLetterSink"]["ref"]
        if dls["kind"] == "KafkaSink":  # production: a topic, consumed into the dead_letter function
            assert dls["name"] in sinks
            sources = [s for s in of_kind(docs, "KafkaSource") if dls["name"] in s["spec"]["topics"]
                       or s["metadata"]["name"] == dls["name"]]
            assert sources and all(s["spec"]["sink"]["ref"]["name"] == "dead-letter" for s in sources)
        else:
            assert dls["kind"] == "Service" and dls["name"] in services
    for trig in of_kind(docs, "Trigger"):
        assert trig["spec"]["subscriber"]["ref"]["name"] in services
        own = (trig["spec"].get("delivery") or {}).get("deadLetterSink")
        assert own or "deadLetterSink" in brokers[trig["spec"]["broker"]]["spec"]["delivery"], trig["metadata"]
    for binding in of_kind(docs, "SinkBinding"):
        assert binding["spec"]["subject"]["name"] in services
        assert binding["spec"]["sink"]["ref"]["name"] in brokers


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_every_scheduled_job_has_a_pingsource(overlay):
    docs = build(overlay)
    pings = of_kind(docs, "PingSource")
    services = {s["metadata"]["labels"]["dvci.gov.vn/function"]: s["metadata"]["name"]
                for s in of_kind(docs, "Service")}
    for folder in function_folders():
        app = function_app(folder)
        if "dev.knative.sources.ping" in app.event_types:
            mine = [p for p in pings if p["spec"]["sink"]["ref"]["name"] == services[folder]]
            jobs = {yaml.safe_load(p["spec"]["data"])["job"] for p in mine}
            declared = set(app.jobs)  # registered with @app.job(...)
            assert jobs == declared, f"{folder}: jobs {declared} vs PingSources {jobs}"
    for p in pings:
        assert p["spec"]["schedule"] and p["spec"]["sink"]["ref"]["name"] in services.values()


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_services_are_hardened_and_bounded(overlay):
    for svc in of_kind(build(overlay), "Service"):
        spec = svc["spec"]["template"]["spec"]
        container = spec["containers"][0]
        assert not container["image"].endswith(":latest") and ":" in container["image"]
        assert container["resources"]["limits"]["cpu"] and container["resources"]["limits"]["memory"]
        assert container["securityContext"]["runAsNonRoot"] is True
        assert container["readinessProbe"]["httpGet"]["path"] == "/health/readiness"
        assert container["livenessProbe"]["httpGet"]["path"] == "/health/liveness"
        assert spec["containerConcurrency"] > 0 and 0 < spec["timeoutSeconds"] <= 600
        annotations = svc["spec"]["template"]["metadata"]["annotations"]
        assert "autoscaling.knative.dev/max-scale" in annotations


# kind -> the Secret its providers' credentials live in
KIND_SECRETS = {"sms": "dvci-sms-credentials", "email": "dvci-email-credentials", "postal": "dvci-postal-credentials",
                "signing": "dvci-signing-credentials"}


def _deployment_settings() -> dict[str, str]:
    """Settings a deployment must provide: where each lives — "config" (the ConfigMap) or the Secret."""
    from shared.integrations.registry import all_specs, load

    needed: dict[str, str] = {"REDIS_URL": "config", "DVCI_ENV": "config"}
    for spec in all_specs():  # every provider of every kind's registry
        if spec.settings is None or spec.kind not in KIND_SECRETS:
            continue
        cls, secret = load(spec.settings), KIND_SECRETS[spec.kind]
        prefix = cls.model_config["env_prefix"]
        for name, field in cls.model_fields.items():
            if name in ("url", "host"):
                needed[f"{prefix}{name}".upper()] = "config"
            elif "SecretStr" in str(field.annotation):
                needed[f"{prefix}{name}".upper()] = secret
    return needed


@pytest.mark.parametrize("overlay", OVERLAYS)
def test_required_settings_are_provided(overlay):
    docs = build(overlay)
    config = next(c for c in of_kind(docs, "ConfigMap") if c["metadata"]["name"] == "dvci-config")["data"]
    secrets = {s["metadata"]["name"]: s.get("stringData", {}) for s in of_kind(docs, "Secret")}
    services = {s["metadata"]["name"]: s for s in of_kind(docs, "Service")}
    for service, secret in (("send-sms", "dvci-sms-credentials"), ("send-email", "dvci-email-credentials")):
        env_from = services[service]["spec"]["template"]["spec"]["containers"][0]["envFrom"]
        assert {"configMapRef": {"name": "dvci-config"}} in env_from
        assert {"secretRef": {"name": secret}} in env_from
    for var, where in _deployment_settings().items():
        if where == "config" and overlay == "dev" and var.endswith("_URL") and var != "REDIS_URL":
            assert "DVCI_SANDBOX_URL" in config  # provider URLs default to the sandbox's
        elif where == "config":
            assert var in config, f"{var} missing from dvci-config in {overlay}"
        elif overlay == "dev":  # staging/production secrets are created out of band (infra/README.md)
            assert var in secrets[where], f"{var} missing from the dev secret {where}"
    if overlay != "dev":
        assert not secrets, "real credentials never live in the repository"
        assert not any("sandbox" in str(v) for v in config.values())


def test_production_uses_the_kafka_broker_and_ordered_sms_delivery():
    docs = build("production")
    broker = of_kind(docs, "Broker")[0]
    assert broker["metadata"]["annotations"]["eventing.knative.dev/broker.class"] == "Kafka"
    assert broker["spec"]["delivery"]["retry"] >= 10
    trig = next(t for t in of_kind(docs, "Trigger") if t["metadata"]["name"] == "send-sms-requested")
    assert trig["metadata"]["annotations"]["kafka.eventing.knative.dev/delivery.order"] == "ordered"


def test_local_broker_reads_the_deployed_triggers():
    """dvci dev's broker and the dev deployment route with the same Trigger and Broker documents."""
    from dvci.dev import DevStack

    assert DevStack().manifests_dir.resolve() == (KNATIVE / "base").resolve()
    local = mf.load(KNATIVE / "base")
    deployed = build("dev")
    strip = lambda d: {k: v for k, v in d.items() if k != "metadata"} | {"name": d["metadata"]["name"]}  # noqa: E731
    base_triggers = sorted((strip(d) for d in local.documents if d.get("kind") == "Trigger"), key=str)
    dev_triggers = sorted((strip(d) for d in of_kind(deployed, "Trigger")), key=str)
    assert base_triggers == dev_triggers
    base_broker = next(d for d in local.documents if d.get("kind") == "Broker")
    assert base_broker["spec"] == of_kind(deployed, "Broker")[0]["spec"]
    for overlay in OVERLAYS:
        kust = yaml.safe_load((KNATIVE / "overlays" / overlay / "kustomization.yaml").read_text())
        assert "../../base" in kust["resources"]


# -- Terraform --------------------------------------------------------------------------------------
def tf_dirs() -> list[Path]:
    return sorted({p.parent for p in TERRAFORM.rglob("*.tf")})


@pytest.mark.parametrize("folder", tf_dirs(), ids=lambda p: str(p.relative_to(TERRAFORM)))
def test_terraform_parses_and_variables_are_declared(folder):
    import hcl2

    text = ""
    for path in sorted(folder.glob("*.tf")):
        with path.open() as fh:
            hcl2.load(fh)  # raises on a syntax error
        text += path.read_text() + "\n"
    declared = set(re.findall(r'^variable\s+"([\w-]+)"', text, re.M))
    used = set(re.findall(r"\bvar\.([A-Za-z_][\w-]*)", text))
    assert used <= declared, f"undeclared variables in {folder}: {used - declared}"
    for source in re.findall(r'source\s*=\s*"(\.[^"]+)"', text):
        target = (folder / source).resolve()
        assert target.is_dir() and list(target.glob("*.tf")), f"module source {source} missing"
    for path in re.findall(r'"\$\{path\.module\}/([^"]+)"', text):
        assert (folder / path).resolve().exists(), f"{path} referenced from {folder} does not exist"


@pytest.mark.parametrize("env", ["staging", "production"])
def test_environments_deploy_their_overlay_in_two_stages(env):
    apps = (TERRAFORM / "envs" / env / "apps" / "main.tf").read_text()
    platform = (TERRAFORM / "envs" / env / "platform" / "main.tf").read_text()
    assert f"knative/overlays/{env}" in apps and "modules/functions" in apps
    assert "modules/knative" in platform and "modules/redis" in platform
    assert "kubernetes_manifest" not in platform  # stage 1 must not need CRDs at plan time


def test_every_function_is_in_openfaas_and_terraform():
    stack = yaml.safe_load((ROOT / "infra" / "openfaas" / "stack.yml").read_text())
    folders = {f["labels"]["dvci.gov.vn/function"]: f for f in stack["functions"].values()}
    for folder in function_folders():
        assert folder in folders, f"functions/{folder} missing from infra/openfaas/stack.yml"
        fn = folders[folder]
        assert fn["environment"]["FUNCTION_SOURCE"] == f"functions/{folder}/main.py"
        assert not fn["image"].endswith(":latest")
        assert fn["limits"]["cpu"] and fn["labels"]["com.openfaas.scale.max"]
    # Terraform deploys the overlays, which hold every Service (checked above for each overlay)
    for env in ("staging", "production"):
        assert (TERRAFORM / "envs" / env / "apps" / "main.tf").exists()


def test_dockerfile_is_multistage_nonroot_and_runs_the_benchmarked_server():
    text = (ROOT / "Dockerfile").read_text()
    assert text.count("FROM ") >= 2 and "AS build" in text
    final = text.rsplit("FROM ", 1)[1]
    assert "USER 10001" in final and "gcc" not in final and "apt-get" not in final
    for env in ("PORT=8080", "WORKERS=1", "FUNCTION_USE_ASGI=1", "FUNCTION_TARGET=handle", "FUNCTION_SOURCE="):
        assert env in final
    assert 'CMD ["functions-framework"]' in final
    assert ":latest" not in text
    ignore = (ROOT / ".dockerignore").read_text().split()
    assert ".git" in ignore and ".venv" in ignore and "tests" in ignore


# -- checkov ------------------------------------------------------------------------------------------
def checkov(*args: str) -> subprocess.CompletedProcess[str]:
    import os

    binary = os.environ.get("DVCI_CHECKOV") or shutil.which("checkov")
    if not binary or not Path(binary).exists():
        pytest.skip("checkov not installed (make test installs it in .venv-checkov)")
    return subprocess.run([binary, "--quiet", "--compact", "--skip-download", "--external-checks-dir",
                           str(ROOT / "infra" / "checkov"), *args], capture_output=True, text=True, check=False,
                          cwd=ROOT)


def test_checkov_passes_over_infra_and_the_dockerfile():
    for target in (["-d", "infra"], ["-f", "Dockerfile"]):
        out = checkov(*target)
        assert out.returncode == 0, out.stdout[-3000:] + out.stderr[-2000:]


def test_custom_policies_catch_what_builtins_miss(tmp_path):
    (tmp_path / "bad.yaml").write_text("""
apiVersion: eventing.knative.dev/v1
kind: Broker
metadata: {name: b, namespace: dvci}
spec: {delivery: {retry: 3}}
---
apiVersion: serving.knative.dev/v1
kind: Service
metadata: {name: s, namespace: dvci}
spec:
  template:
    spec:
      containers:
        - image: dvci/functions:latest
          securityContext: {runAsNonRoot: false}
""")
    out = checkov("-d", str(tmp_path), "--framework", "kubernetes")
    assert out.returncode != 0
    for check in ("CKV2_DVCI_1", "CKV2_DVCI_2", "CKV2_DVCI_3", "CKV2_DVCI_4"):
        assert f"{check}" in out.stdout, check


# -- autoscaling set from measurements (perf round 2): infra/autoscaling.json is what `python -m bench.autoscale`
# derived from `make bench`; every Service's annotations and containerConcurrency must match it
def test_autoscaling_matches_the_table_the_bench_wrote():
    import orjson

    table = orjson.loads((ROOT / "infra" / "autoscaling.json").read_bytes())["functions"]
    services = {d["metadata"]["name"]: d for path in (KNATIVE / "base").glob("*.yaml")
                for d in yaml.safe_load_all(path.read_text()) if d and d.get("kind") == "Service"}
    assert {row["service"] for row in table.values()} == set(services), "a Service without a row, or the reverse"
    for name, row in table.items():
        template = services[row["service"]]["spec"]["template"]
        ann = template["metadata"]["annotations"]
        got = {"min_scale": int(ann["autoscaling.knative.dev/min-scale"]),
               "max_scale": int(ann["autoscaling.knative.dev/max-scale"]),
               "metric": ann.get("autoscaling.knative.dev/metric"),
               "target": int(ann.get("autoscaling.knative.dev/target", 0)),
               "container_concurrency": template["spec"]["containerConcurrency"]}
        assert got == {k: row[k] for k in got}, f"{name}: run `python -m bench.autoscale` after `make bench`"
        if row["metric"] == "rps":  # the target leaves headroom under the measured saturation point
            assert row["measured_ev_s_per_pod"] and row["target"] < row["measured_ev_s_per_pod"]
    assert table["send_sms"]["min_scale"] >= 1  # citizens wait on OTPs: kept warm
    for cold in ("postal_create", "postal_track", "sign_document", "dead_letter"):
        assert table[cold]["min_scale"] == 0, f"{cold} is a cold path: it scales to zero"
