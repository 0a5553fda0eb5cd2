"""Every Slack identifier the app uses: commands, callback_ids, block_ids and action_ids.

The listeners route on these, the manifest test checks them, and the modal builder uses them. block_id and
action_id must never change between two builds of the modal: Slack keeps what the user typed across
`views.update` only for inputs whose block_id and action_id stay the same.
"""

from __future__ import annotations

from typing import Final

# --- entry points -------------------------------------------------------------------------------------------
COMMAND: Final = "/finetune"
SHORTCUT_FROM_THREAD: Final = "finetune_from_thread"  # message shortcut callback_id
VIEW_FINETUNE: Final = "finetune_modal"  # view callback_id
ACTION_EDIT_RETRY: Final = "finetune_edit_retry"  # button on a failure notice: reopen the modal filled in

# Value of the single option `options_error` returns; the form rejects it with a readable message.
OPTION_ERROR_VALUE: Final = "__error__"

# --- modal blocks: (block_id, action_id) per field ----------------------------------------------------------
BLOCK_DATASET: Final = "dataset"
ACTION_DATASET: Final = "dataset_select"  # external_select: `options` requests, and a redraw when picked

BLOCK_PROVIDER: Final = "provider"
# Shown only when several backends are on: the first input, whose change redraws the modal with that backend's form.
BLOCK_BACKEND: Final = "backend"
ACTION_BACKEND: Final = "backend_select"
ACTION_PROVIDER: Final = "provider_select"  # dispatch_action: the app rebuilds the view with views.update

# The base model list depends on the backend's option (OpenPipe: the provider), so its block_id carries the
# option: a model chosen for one must not be carried by Slack into another's list, where it is not an option.
BLOCK_BASE_MODEL_PREFIX: Final = "base_model__"
ACTION_BASE_MODEL: Final = "base_model_select"


def block_base_model(option: str) -> str:
    return f"{BLOCK_BASE_MODEL_PREFIX}{option}"


BLOCK_SLUG: Final = "slug"
ACTION_SLUG: Final = "slug_input"

BLOCK_ENABLE_SFT: Final = "enable_sft"
ACTION_ENABLE_SFT: Final = "enable_sft_toggle"  # dispatch_action: shows / hides the SFT inputs
BLOCK_SFT_BATCH_SIZE: Final = "sft_batch_size"
ACTION_SFT_BATCH_SIZE: Final = "sft_batch_size_input"
BLOCK_SFT_LR_MULTIPLIER: Final = "sft_lr_multiplier"
ACTION_SFT_LR_MULTIPLIER: Final = "sft_lr_multiplier_input"
BLOCK_SFT_EPOCHS: Final = "sft_epochs"
ACTION_SFT_EPOCHS: Final = "sft_epochs_input"
BLOCK_SFT_LEARNING_RATE: Final = "sft_learning_rate"
ACTION_SFT_LEARNING_RATE: Final = "sft_learning_rate_input"

BLOCK_ENABLE_DPO: Final = "enable_dpo"
ACTION_ENABLE_DPO: Final = "enable_dpo_toggle"  # dispatch_action: shows / hides the DPO inputs
BLOCK_DPO_VARIANT: Final = "dpo_variant"
ACTION_DPO_VARIANT: Final = "dpo_variant_select"
BLOCK_DPO_BETA: Final = "dpo_beta"
ACTION_DPO_BETA: Final = "dpo_beta_input"
BLOCK_DPO_LR_MULTIPLIER: Final = "dpo_lr_multiplier"
ACTION_DPO_LR_MULTIPLIER: Final = "dpo_lr_multiplier_input"
BLOCK_DPO_EPOCHS: Final = "dpo_epochs"
ACTION_DPO_EPOCHS: Final = "dpo_epochs_input"
BLOCK_DPO_ADAPTER_WEIGHT: Final = "dpo_adapter_weight"
ACTION_DPO_ADAPTER_WEIGHT: Final = "dpo_adapter_weight_input"
BLOCK_DPO_BATCH_SIZE: Final = "dpo_batch_size"
ACTION_DPO_BATCH_SIZE: Final = "dpo_batch_size_input"

BLOCK_PRUNING_RULES: Final = "pruning_rule_ids"
ACTION_PRUNING_RULES: Final = "pruning_rule_ids_input"

BLOCK_TEMPERATURE: Final = "default_temperature"
ACTION_TEMPERATURE: Final = "default_temperature_input"

BLOCK_FORM_ERRORS: Final = "form_errors"  # section listing errors the service returned (Edit and retry)

# action_ids that make the app rebuild the modal (register one `app.action` for each).
DISPATCH_ACTIONS: Final = (ACTION_DATASET, ACTION_PROVIDER, ACTION_ENABLE_SFT, ACTION_ENABLE_DPO)

# Value of the checked option of the SFT / DPO checkboxes.
CHECKED: Final = "on"

# --- the card's controls (value: the job's id) --------------------------------------------------------------
BLOCK_CARD_ACTIONS: Final = "job_actions"  # the card's actions block
ACTION_CANCEL_JOB: Final = "job_cancel"  # button with Slack's confirm dialog (Capabilities.cancel)
ACTION_JOB_MENU: Final = "job_menu"  # overflow menu; option values "<verb>:<job id>", e.g. "delete:12"
ACTION_TRY_IT: Final = "job_try_it"  # a finished model's "Try it" (Capabilities.chat_completions)

# --- Try it modal -------------------------------------------------------------------------------------------
VIEW_TRY_IT: Final = "try_it_modal"
BLOCK_TRY_SYSTEM: Final = "try_system"
ACTION_TRY_SYSTEM: Final = "try_system_input"
BLOCK_TRY_PROMPT: Final = "try_prompt"
ACTION_TRY_PROMPT: Final = "try_prompt_input"
ACTION_TRY_SHARE: Final = "try_share"  # "Share in thread"

# --- price confirmation (Capabilities.price_estimate): pushed over the form on submit ------------------------
VIEW_PRICE_CONFIRM: Final = "price_confirm_modal"

# --- a dataset from a file (Capabilities.dataset_upload) -----------------------------------------------------
BLOCK_DATASET_FILE: Final = "dataset_file"
ACTION_DATASET_FILE: Final = "dataset_file_input"  # file_input of one .jsonl file
ACTION_UPLOAD_VALID_ONLY: Final = "dataset_upload_valid_only"  # after a report with errors

# --- App Home -----------------------------------------------------------------------------------------------
ACTION_HOME_NEW_FINETUNE: Final = "home_new_finetune"
