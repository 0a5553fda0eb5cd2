"""The stored shape of a spec from before backends declared their fields, read into today's neutral shape.

Only OpenPipe existed then: a spec was `provider`, `enable_sft` + `sft`, `enable_preference` + `preference`,
`pruning_rule_ids` and `default_temperature`. Jobs (jobs.spec) written that way must still load, so the old keys
become OpenPipe's field ids. Lossless: every value given is kept, even one a switched-off method would not use.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any, Final

_SFT: Final = {
    "batch_size": "sft_batch_size",
    "learning_rate_multiplier": "sft_lr_multiplier",
    "epochs": "sft_epochs",
    "learning_rate": "sft_learning_rate",
}
_PREFERENCE: Final = {
    "variant": "dpo_variant",
    "learning_rate_multiplier": "dpo_lr_multiplier",
    "epochs": "dpo_epochs",
    "beta": "dpo_beta",
    "adapter_weight": "dpo_adapter_weight",
    "batch_size": "dpo_batch_size",
}
_OLD_KEYS: Final = frozenset(
    {"provider", "enable_sft", "sft", "enable_preference", "preference", "pruning_rule_ids", "default_temperature"}
)


def _dump(params: object) -> Mapping[str, Any]:
    if isinstance(params, Mapping):
        return params
    dump = getattr(params, "model_dump", None)  # a pydantic model given to the constructor
    return dump() if callable(dump) else {}


def from_legacy_spec(data: Any) -> Any:
    """`data` in the neutral shape; anything that is not the old shape is returned as it is."""
    if not isinstance(data, Mapping) or not _OLD_KEYS & data.keys():
        return data
    out = {k: v for k, v in data.items() if k not in _OLD_KEYS}
    parameters: dict[str, Any] = dict(out.get("parameters") or {})
    for group, names in (("sft", _SFT), ("preference", _PREFERENCE)):
        for key, value in _dump(data.get(group)).items():
            if value is not None and key in names:
                parameters[names[key]] = value
    rules = data.get("pruning_rule_ids")
    if rules:
        parameters["pruning_rule_ids"] = tuple(rules)
    if data.get("default_temperature") is not None:
        parameters["default_temperature"] = data["default_temperature"]
    provider = data.get("provider")
    if provider is not None:
        out["option"] = str(getattr(provider, "value", provider))  # OpenPipe's option field is the provider
    methods = []
    if data.get("enable_sft", True):
        methods.append("sft")
    if data.get("enable_preference", False):
        methods.append("dpo")
    out["methods"] = tuple(methods)
    out["parameters"] = parameters
    return out
