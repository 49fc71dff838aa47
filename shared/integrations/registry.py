"""One provider registry per kind. Each provider declares, in its kind's `providers.py`, its client, its
settings, its sandbox simulator, the environment that points it at a sandbox, and its webhook; the
service, the sandbox server, `dvci dev`, the infra checks and the bench iterate the registries.

    REGISTRY = Registry("sms", [ProviderSpec("sms", "viettel", client="shared.integrations.sms.viettel:ViettelSms",
                                             simulator="sandbox.viettel:ViettelSimulator", ...)])

A kind's registry is discovered: every module of the kind's package that declares `PROVIDER = ProviderSpec(...)`
(found by reading the sources, so nothing else is imported). Adding a provider is adding its module.
Extra providers (a test, a province's own gateway) join without editing this package: list
`module:ATTRIBUTE` references to ProviderSpec objects in `DVCI_<KIND>_EXTRA_PROVIDERS` (comma-separated).
"""

from __future__ import annotations

import importlib
import os
import re
from collections.abc import Iterator
from dataclasses import dataclass, field
from importlib.resources import files
from typing import Any, Literal

from shared.security.webhooks import WebhookAuth, ips

# kind -> the module holding its REGISTRY (every kind of the project; imported only when asked for)
KINDS: dict[str, str] = {
    "sms": "shared.integrations.sms.providers",
    "email": "shared.integrations.email.providers",
    "postal": "shared.integrations.postal.providers",
    "lgsp": "shared.integrations.lgsp.providers",
    "signing": "shared.integrations.signature.providers",
}


def sandbox_url(path: str) -> str:
    """A provider's default URL: the local sandbox (`DVCI_SANDBOX_URL`, `dvci dev` sets it) + its path."""
    return os.environ.get("DVCI_SANDBOX_URL", "http://127.0.0.1:8900").rstrip("/") + path


def load(ref: str) -> Any:
    """`package.module:Attribute` -> the attribute."""
    module, _, attr = ref.partition(":")
    obj: Any = importlib.import_module(module)
    for part in attr.split("."):
        obj = getattr(obj, part)
    return obj


@dataclass(frozen=True, slots=True)
class WebhookSpec:
    """An inbound webhook of a provider: where the function serves it, how it is authenticated (fields of
    the provider's settings), and the parser of its payload (kind-specific)."""

    path: str
    parser: str
    scheme: str = "hmac-sha256"
    secret_field: str = "webhook_secret"
    allow_ips_field: str = "webhook_allow_ips"
    header: str = "x-dvci-signature"
    sandbox_secret: str = ""  # what the provider's simulator signs with (published: dev and tests only)


@dataclass(frozen=True, slots=True)
class ProviderSpec:
    kind: str
    name: str
    client: str  # "module:Class", built with no arguments (it reads its own settings)
    settings: str | None = None  # "module:Class" (pydantic-settings)
    simulator: str | None = None  # "sandbox.module:Class"
    url_env: dict[str, str] = field(default_factory=dict)  # env var -> path under the sandbox's base URL
    webhook: WebhookSpec | None = None
    receipts: Literal["push", "pull", "none"] = "none"  # how the sandbox reports back (dvci dev wires it)

    def new_client(self) -> Any:
        return load(self.client)()

    def new_simulator(self) -> Any:
        if self.simulator is None:
            raise LookupError(f"{self.kind} provider {self.name} has no simulator")
        return load(self.simulator)()

    def settings_object(self) -> Any:
        return load(self.settings)() if self.settings else None

    def webhook_auth(self, env: str | None = None) -> WebhookAuth:
        """The webhook's authentication from the provider's settings. With no secret and no allow-list, a dev or
        test environment uses the simulator's published secret; any other refuses to start (never a silent
        fallback to a published secret)."""
        assert self.webhook is not None, f"{self.name} has no webhook"
        from shared.runtime.settings import allows_sandbox_defaults, runtime_settings

        s = self.settings_object()
        secret = getattr(s, self.webhook.secret_field, None)
        secret_value = secret.get_secret_value() if secret is not None and hasattr(secret, "get_secret_value") \
            else secret
        auth = WebhookAuth(secret=secret_value or None, scheme=self.webhook.scheme, header=self.webhook.header,
                           allow_ips=ips(str(getattr(s, self.webhook.allow_ips_field, "") or "")))
        if auth.secret or auth.networks:
            return auth
        env = env if env is not None else runtime_settings().env
        if not allows_sandbox_defaults(env) or not self.webhook.sandbox_secret:
            prefix = s.model_config.get("env_prefix", "") if s is not None else ""
            raise RuntimeError(f"{prefix}{self.webhook.secret_field}".upper() + f" is not set: refusing to serve "
                               f"{self.webhook.path} in {env!r} (no fallback to a sandbox secret outside dev/test)")
        return WebhookAuth(secret=self.webhook.sandbox_secret, scheme=self.webhook.scheme, header=self.webhook.header)


class Registry:
    """The providers of one kind, in declaration order."""

    def __init__(self, kind: str, specs: list[ProviderSpec] | None = None):
        self.kind = kind
        self._specs: dict[str, ProviderSpec] = {}
        for spec in specs or []:
            self.register(spec)
        for ref in os.environ.get(f"DVCI_{kind.upper()}_EXTRA_PROVIDERS", "").split(","):
            if ref.strip():
                self.register(load(ref.strip()), replace=True)

    @classmethod
    def discover(cls, kind: str, package: str) -> Registry:
        """The registry of the modules of `package` that declare `PROVIDER = ProviderSpec(...)`, in name order."""
        declares = re.compile(r"^PROVIDER\s*[:=]", re.M)
        modules = sorted(f.name[:-3] for f in files(package).iterdir()
                         if f.name.endswith(".py") and not f.name.startswith("_") and declares.search(f.read_text()))
        return cls(kind, [load(f"{package}.{m}:PROVIDER") for m in modules])

    def register(self, spec: ProviderSpec, *, replace: bool = False) -> None:
        if spec.kind != self.kind:
            raise ValueError(f"{spec.name} is a {spec.kind} provider, not {self.kind}")
        if spec.name in self._specs and not replace:
            raise ValueError(f"{self.kind} provider {spec.name} is registered already")
        self._specs[spec.name] = spec

    def unregister(self, name: str) -> None:
        self._specs.pop(name, None)

    def __iter__(self) -> Iterator[ProviderSpec]:
        return iter(list(self._specs.values()))

    def __contains__(self, name: object) -> bool:
        return name in self._specs

    def get(self, name: str) -> ProviderSpec:
        try:
            return self._specs[name]
        except KeyError:
            raise LookupError(f"no {self.kind} provider {name!r}; known: {', '.join(self._specs)}") from None

    def names(self) -> list[str]:
        return list(self._specs)

    def webhooks(self) -> list[ProviderSpec]:
        return [s for s in self if s.webhook is not None]


def registry(kind: str) -> Registry:
    reg: Registry = load(KINDS[kind] + ":REGISTRY")
    return reg


def registries() -> dict[str, Registry]:
    """Every kind's registry, in KINDS order."""
    return {kind: registry(kind) for kind in KINDS}


def all_specs() -> list[ProviderSpec]:
    return [spec for reg in registries().values() for spec in reg]
