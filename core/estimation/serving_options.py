"""Which GPU model should serve an LLM: size it on every catalog GPU and rank by cost.

For each GPU the smallest tensor-parallel size that holds weights + KV cache + overhead is
found (:func:`core.estimation.inference.size_llm`); the hourly price of that many GPUs and the
memory-bandwidth decode bound give an upper bound on tokens per CNY. The explanation says, in
plain words, why a model that fits one mid-range card belongs there rather than on a training
GPU.
"""

from __future__ import annotations

from dataclasses import dataclass

from core.errors import InputError
from core.estimation.catalog import load_catalog
from core.estimation.inference import LLMSizing, size_llm
from core.i18n import Msg


@dataclass(frozen=True)
class ServingOption:
    """One GPU model able to hold the model: TP size, price per hour, decode bound."""

    sizing: LLMSizing
    price_cny_per_hour: float
    tokens_per_cny_upper_bound: float
    price_is_placeholder: bool

    def as_dict(self) -> dict:
        """Plain dict for tables and JSON."""
        return self.sizing.as_dict() | {
            "price_cny_per_hour": self.price_cny_per_hour,
            "tokens_per_cny_upper_bound": self.tokens_per_cny_upper_bound,
            "price_is_placeholder": self.price_is_placeholder,
        }


def serving_options(
    *, params: float, layers: int, kv_heads: int, head_dim: int, tokens_in_flight: int,
    concurrent_sequences: int = 1, weight_bytes: float = 2, kv_bytes: float = 2,
) -> tuple[list[ServingOption], list[Msg]]:
    """Options across the catalog, cheapest per hour first, and the reasons for the first choice."""
    options, too_small = [], []
    for gpu in load_catalog().gpus:
        try:
            sizing = size_llm(params=params, layers=layers, kv_heads=kv_heads, head_dim=head_dim,
                              weight_bytes=weight_bytes, kv_bytes=kv_bytes, tokens_in_flight=tokens_in_flight,
                              gpu=gpu, concurrent_sequences=concurrent_sequences)
        except InputError as exc:
            if exc.field == "gpu":
                too_small.append(gpu.id)
                continue
            raise
        price = gpu.price_cny_per_gpu_hour * sizing.tensor_parallel
        options.append(ServingOption(sizing, price, sizing.decode_tokens_per_s_upper_bound * 3600 / price,
                                     gpu.price_is_placeholder))
    options.sort(key=lambda o: (o.price_cny_per_hour, -o.tokens_per_cny_upper_bound))
    reasons: list[Msg] = []
    if too_small:
        reasons.append(Msg("serving.too_small", {"gpus": ", ".join(too_small)}))
    if options:
        best = options[0]
        single = [o for o in options if o.sizing.tensor_parallel == 1]
        key = "serving.choice_single_card" if best.sizing.tensor_parallel == 1 else "serving.choice_multi_card"
        reasons.append(Msg(key, {"gpu": best.sizing.gpu, "tp": best.sizing.tensor_parallel,
                                 "price": f"{best.price_cny_per_hour:.2f}", "single": len(single)}))
        fastest = max(options, key=lambda o: o.sizing.decode_tokens_per_s_upper_bound)
        if fastest is not best:
            reasons.append(Msg("serving.fastest_alternative", {
                "gpu": fastest.sizing.gpu, "tp": fastest.sizing.tensor_parallel,
                "ratio": f"{fastest.sizing.decode_tokens_per_s_upper_bound / best.sizing.decode_tokens_per_s_upper_bound:.1f}",
                "price_ratio": f"{fastest.price_cny_per_hour / best.price_cny_per_hour:.1f}"}))
    return options, reasons
