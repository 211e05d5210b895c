"""Planted bugs in head importance, the Kaneko pruning objective, masks, IG2 bookkeeping and the
family table; each is caught by an independent oracle in tests/test_oracles_methods.py."""

from tests.mutations.harness import Mutation

T = "tests/test_oracles_methods.py::"

MUTATIONS = [
    Mutation("michel-gate-repeat", "bias_lab/heads/importance.py",
             "head_columns(gates[layer].to(hidden.dtype), size)",
             "gates[layer].to(hidden.dtype).repeat(size)",
             (T + "test_michel_importance_equals_finite_differences_of_head_weight_columns",
              T + "test_michel_importance_accumulation_and_normalisation_on_a_constructed_gradient"),
             "the head gate is tiled, so gate h scales one column of every head instead of head h's columns"),
    Mutation("michel-norm-wrong-axis", "bias_lab/heads/importance.py",
             "norms = importance.norm(dim=1, keepdim=True)",
             "norms = importance.norm(dim=0, keepdim=True)",
             (T + "test_michel_importance_accumulation_and_normalisation_on_a_constructed_gradient",
              T + "test_michel_importance_equals_finite_differences_of_head_weight_columns"),
             "the L2 normalisation runs over layers (per head) instead of over each layer's heads"),
    Mutation("kaneko-last-layer-off-by-one", "bias_lab/pruning/kaneko.py",
             "return [num_layers]",
             "return [num_layers - 1]",
             (T + "test_kaneko_loss_by_hand",),
             "'last' reads the hidden states of the layer below the last"),
    Mutation("kaneko-projection-not-squared", "bias_lab/pruning/kaneko.py",
             "debias = (projections ** 2 * keep[None, None])",
             "debias = (projections.abs() * keep[None, None])",
             (T + "test_kaneko_loss_by_hand",),
             "the debias term uses |⟨h, mean⟩| instead of the squared inner product"),
    Mutation("ste-gradient-sign-flipped", "bias_lab/pruning/masks.py",
             "return grad_output, None",
             "return -grad_output, None",
             (T + "test_one_step_lowers_the_score_of_a_block_whose_removal_lowers_the_loss",),
             "the straight-through gradient is negated: training keeps the blocks it should prune"),
    Mutation("gpt2-surviving-heads-key-third", "bias_lab/pruning/masks.py",
             'matrix = matrix[loaded.adapter.head_rows(layer, "value")[1]]',
             'matrix = matrix[loaded.adapter.head_rows(layer, "key")[1]]',
             (T + "test_gpt2_fused_qkv_value_columns_decide_whether_a_head_survives",),
             "GPT-2's fused c_attn: a head's survival is read from its key columns, not its value columns"),
    Mutation("mlm-loss-never-masks", "bias_lab/evaluation/mlm_loss.py",
             "masked[position] = loaded.mask_token_id",
             "masked[position] = ids[position]",
             (T + "test_mlm_loss_masks_the_chosen_tokens_and_equals_the_hand_cross_entropy",),
             "the chosen tokens are left visible, so mlm-loss scores copying instead of prediction"),
    Mutation("mask-probabilities-rows-sorted", "bias_lab/forward.py",
             "result[rows] = probabilities.gather(1, ids).double().cpu()",
             "result[start:start + len(rows)] = probabilities.gather(1, ids).double().cpu()",
             (T + "test_mask_probabilities_rows_follow_the_prompts_order",),
             "rows come back in length order, not in the prompts' order"),
    Mutation("ig2-mean-score-over-all-juts", "bias_lab/neurons/selection.py",
             "jut_scores = scores[torch.as_tensor(in_jut)].float().mean(dim=0).reshape(-1)",
             "jut_scores = scores.float().mean(dim=0).reshape(-1)",
             (T + "test_mean_score_is_the_mean_over_the_juts_own_prompts",),
             "a neuron's mean_score averages over every JUT's prompts instead of its own JUT's"),
    Mutation("family-llama-attn-out-is-v-proj", "bias_lab/families.py",
             'attn_out="self_attn.o_proj", query="self_attn.q_proj"',
             'attn_out="self_attn.v_proj", query="self_attn.q_proj"',
             (T + "test_family_sites_are_the_real_projections",),
             "Llama's attention output site points at v_proj (same input width, wrong module)"),
    Mutation("family-gptneo-attn-out-is-v-proj", "bias_lab/families.py",
             'attn_out="attn.attention.out_proj", query="attn.attention.q_proj"',
             'attn_out="attn.attention.v_proj", query="attn.attention.q_proj"',
             (T + "test_family_sites_are_the_real_projections",),
             "GPT-Neo's attention output site points at v_proj (same widths, wrong module)"),
    Mutation("family-bert-value-is-key", "bias_lab/families.py",
             'Family(name="bert", model_types=("bert",), causal=False,\n'
             '           layers="encoder.layer", ffn_out="output.dense", ffn_in=("intermediate.dense",),\n'
             '           attn_out="attention.output.dense",\n'
             '           query="attention.self.query", key="attention.self.key", value="attention.self.value"',
             'Family(name="bert", model_types=("bert",), causal=False,\n'
             '           layers="encoder.layer", ffn_out="output.dense", ffn_in=("intermediate.dense",),\n'
             '           attn_out="attention.output.dense",\n'
             '           query="attention.self.query", key="attention.self.key", value="attention.self.key"',
             (T + "test_family_sites_are_the_real_projections",),
             "BERT's value site points at the key projection: head pruning would prune keys"),
]
