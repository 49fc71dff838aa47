"""The LGSP kind's targets: the national portal's adapter (DVCQG) and the provincial LGSP gateway (which
also carries the population-database lookup). Rates and breaker thresholds are in settings.py."""

from __future__ import annotations

from shared.integrations.registry import ProviderSpec, Registry

REGISTRY = Registry("lgsp", [
    ProviderSpec("lgsp", "dvcqg", client="shared.integrations.lgsp.dvcqg:DvcqgTarget",
                 settings="shared.integrations.lgsp.settings:DvcqgSettings",
                 simulator="sandbox.dvcqg:DvcqgSimulator", url_env={"DVCI_DVCQG_URL": "/dvcqg"}),
    ProviderSpec("lgsp", "lgsp", client="shared.integrations.lgsp.lgsp:LgspTarget",
                 settings="shared.integrations.lgsp.settings:LgspSettings",
                 simulator="sandbox.lgsp:LgspSimulator", url_env={"DVCI_LGSP_URL": "/lgsp"}),
])
