"""What the local Together accepts in a create (or price estimate) body, each model's limits, and a job's price."""

from __future__ import annotations

from typing import Any

from slackbot.sandbox.stand_in import Reply
from slackbot.sandbox.together_files import Files
from slackbot.sandbox.together_http import ApiError

SUPPORTED_MODELS = (
    "meta-llama/Meta-Llama-3.1-8B-Instruct-Reference",
    "meta-llama/Meta-Llama-3.1-70B-Instruct-Reference",
    "Qwen/Qwen2.5-7B-Instruct",
)
PRICE_PER_MILLION_TOKENS = {"Lora": 0.48, "Full": 0.54}


def model_limits(model: str) -> Any:
    """GET /fine-tunes/models/limits: what a model allows (a 404 `Reply` for a model not offered)."""
    if model not in SUPPORTED_MODELS:
        return Reply(404, {"message": f"Model {model} is not available for fine-tuning"})
    big = "70B" in model
    return {
        "model_name": model,
        "full_training": {
            "max_batch_size": 32 if big else 96,
            "max_batch_size_dpo": 16 if big else 48,
            "min_batch_size": 8,
        },
        "lora_training": {
            "max_batch_size": 64 if big else 128,
            "max_batch_size_dpo": 32 if big else 64,
            "min_batch_size": 8,
            "max_rank": 64,
            "target_modules": ["q_proj", "k_proj", "v_proj", "o_proj", "up_proj", "down_proj", "gate_proj"],
            "default_rank": 16,
        },
        "max_num_epochs": 20,
        "max_num_evals": 100,
        "max_num_checkpoints": 10,
        "max_learning_rate": 1.0,
        "min_learning_rate": 1e-8,
        "default_gradient_accumulation_steps": 1,
        "max_seq_length_sft": 8192,
        "max_seq_length_dpo": 8192,
        "min_max_seq_length": 512,
        "supports_full_training": not big,
        "supports_vision": False,
        "supports_tools": True,
        "supports_reasoning": False,
        "merge_output_lora": True,
    }


def checked(body: Any, files: Files, *, for_estimate: bool = False) -> dict[str, Any]:
    """The spec's rules the real service enforces, with its kind of message and the field in `param`."""
    if not isinstance(body, dict):
        raise ApiError(400, "The request body must be a JSON object")
    required = ("training_file",) if for_estimate else ("training_file", "model")
    for key in required:
        if not isinstance(body.get(key), str) or not body[key]:
            raise ApiError(400, f"{key} is required", param=key)
    entry = files.get(body["training_file"])
    if entry is None or entry.data is None or entry.purpose != "fine-tune":
        raise ApiError(
            400, f"training_file {body['training_file']} is not an uploaded fine-tune file", param="training_file"
        )
    if body.get("validation_file") and files.get(body["validation_file"]) is None:
        raise ApiError(400, f"validation_file {body['validation_file']} was not found", param="validation_file")
    model = body.get("model", SUPPORTED_MODELS[0])
    if model not in SUPPORTED_MODELS:
        raise ApiError(400, f"Model {model} is not supported for fine-tuning", param="model")
    limits = model_limits(model)
    for key, low, high in (
        ("n_epochs", 1, limits["max_num_epochs"]),
        ("n_evals", 0, limits["max_num_evals"]),
        ("n_checkpoints", 1, limits["max_num_checkpoints"]),
    ):
        value = body.get(key)
        if value is not None and (not isinstance(value, int) or isinstance(value, bool) or not low <= value <= high):
            raise ApiError(400, f"{key} must be an integer between {low} and {high}", param=key)
    lr = body.get("learning_rate")
    if lr is not None and (
        isinstance(lr, bool)
        or not isinstance(lr, int | float)
        or not limits["min_learning_rate"] <= lr <= limits["max_learning_rate"]
    ):
        raise ApiError(
            400,
            f"learning_rate must be between {limits['min_learning_rate']} and {limits['max_learning_rate']}",
            param="learning_rate",
        )
    ttype = body.get("training_type") or {"type": "Lora", "lora_r": 16, "lora_alpha": 32}
    if not isinstance(ttype, dict) or ttype.get("type") not in ("Lora", "Full"):
        raise ApiError(400, "training_type.type must be Lora or Full", param="training_type")
    if ttype["type"] == "Full" and not limits["supports_full_training"]:
        raise ApiError(400, f"Full training is not available for {model}", param="training_type")
    if ttype["type"] == "Lora":
        rank = ttype.get("lora_r")
        if not isinstance(rank, int) or not isinstance(ttype.get("lora_alpha"), int) or not 1 <= rank <= 64:
            raise ApiError(400, "lora_r (1 to 64) and lora_alpha are required for LoRA training", param="training_type")
    method = body.get("training_method") or {"method": "sft", "train_on_inputs": "auto"}
    if not isinstance(method, dict) or method.get("method") not in ("sft", "dpo"):
        raise ApiError(400, "training_method.method must be sft or dpo", param="training_method")
    if method["method"] == "sft" and method.get("train_on_inputs") not in (True, False, "auto"):
        raise ApiError(400, "train_on_inputs must be true, false or auto", param="training_method")
    side = limits["lora_training"] if ttype["type"] == "Lora" else limits["full_training"]
    high = side["max_batch_size_dpo"] if method["method"] == "dpo" else side["max_batch_size"]
    batch = body.get("batch_size", "max")
    if batch != "max" and (
        not isinstance(batch, int) or isinstance(batch, bool) or not side["min_batch_size"] <= batch <= high
    ):
        raise ApiError(
            400, f"batch_size must be max or between {side['min_batch_size']} and {high}", param="batch_size"
        )
    return {**body, "model": model, "training_type": ttype, "training_method": method,
            "resolved_batch_size": high if batch == "max" else batch}  # fmt: skip


def job_price(body: dict[str, Any], files: Files) -> tuple[int, float]:
    """The tokens a job trains on and its price in dollars."""
    data = files.data(body["training_file"]) or b""
    tokens = max(1, len(data) // 4) * body.get("n_epochs", 1)
    rate = PRICE_PER_MILLION_TOKENS[body["training_type"]["type"]]
    if body["training_method"]["method"] == "dpo":
        rate *= 2  # a pair is two sequences
    return tokens, round(tokens * rate / 1_000_000, 6)


def estimate(body: dict[str, Any], files: Files, budget: float) -> dict[str, Any]:
    """POST /fine-tunes/estimate-price: the price, and whether it is within `budget` (dollars)."""
    tokens, price = job_price(body, files)
    evals = body.get("n_evals", 0)
    return {
        "estimation_available": True,
        "estimated_total_price": price,
        "allowed_to_proceed": price <= budget,
        "user_limit": budget,
        "estimated_train_token_count": tokens,
        "estimated_eval_token_count": tokens // 10 if evals else 0,
    }
