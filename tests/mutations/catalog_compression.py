"""Planted bugs in knowledge distillation: the loss terms, the student's initialisation, the LM head
at chosen positions and resuming; each is caught by a test of tests/test_distill.py."""

from tests.mutations.harness import Mutation

T = "tests/test_distill.py::"

MUTATIONS = [
    Mutation("distill-kl-reversed", "bias_lab/compression/losses.py",
             "per_position = (teacher_log.exp() * (teacher_log - student_log)).sum(-1)",
             "per_position = (student_log.exp() * (student_log - teacher_log)).sum(-1)",
             (T + "test_loss_terms_equal_a_hand_computation",),
             "KL(student ‖ teacher) instead of KL(teacher ‖ student)"),
    Mutation("distill-temperature-not-squared", "bias_lab/compression/losses.py",
             "return per_position.mean() * temperature ** 2",
             "return per_position.mean() * temperature",
             (T + "test_loss_terms_equal_a_hand_computation",),
             "the softened KL is scaled by T, not T², so its gradient shrinks with the temperature"),
    Mutation("distill-cosine-sign", "bias_lab/compression/losses.py",
             "return (1 - F.cosine_similarity(",
             "return (1 + F.cosine_similarity(",
             (T + "test_loss_terms_equal_a_hand_computation",),
             "the cosine loss rewards student states that point away from the teacher's"),
    Mutation("distill-student-copies-first-layers", "bias_lab/compression/student.py",
             "layer = layers[int(position)]",
             "layer = int(position)",
             (T + "test_zero_steps_save_a_student_whose_layers_are_the_chosen_teacher_layers",),
             "student layer j copies teacher layer j, not the chosen teacher layer"),
    Mutation("distill-narrow-keeps-weakest", "bias_lab/compression/student.py",
             "torch.topk(norms, width)",
             "torch.topk(-norms, width)",
             (T + "test_a_narrower_student_equals_the_teacher_with_the_weakest_neurons_zeroed",),
             "a narrower student keeps the FFN neurons with the weakest output weights"),
    Mutation("distill-lm-head-wrong-positions", "bias_lab/compression/distill.py",
             "output.last_hidden_state = hidden[rows, columns].unsqueeze(0)",
             "output.last_hidden_state = hidden[rows, columns.flip(0)].unsqueeze(0)",
             (T + "test_lm_head_at_chosen_positions_equals_the_full_pass",),
             "the LM head reads other positions than the loss's"),
    Mutation("distill-resume-forgets-optimizer", "bias_lab/compression/distill.py",
             "optimizer.load_state_dict(optimizer_state)",
             "pass",
             (T + "test_a_resumed_run_has_the_history_and_weights_of_an_uninterrupted_one",),
             "a resumed run restarts Adam's moments from zero"),
    Mutation("distill-resume-drops-history", "bias_lab/compression/distill.py",
             'step, history, seconds = state["step"], state["history"], state["seconds"]',
             'step, history, seconds = state["step"], [], state["seconds"]',
             (T + "test_a_resumed_run_has_the_history_and_weights_of_an_uninterrupted_one",),
             "a resumed run forgets the loss history of the steps before the interruption"),
]
