"""Train a tiny reasoner, then show what prompt ensembling buys: ``corelib run`` this file.

    corelib run examples/reasoning/config.py                   # everything, in runs/reasoning
    corelib run examples/reasoning/config.py --force verifier  # redo one stage (and what follows)
    corelib run examples/reasoning/config.py main.stages.paths.prompts.num_prompts=3

Every stage is a node under ``main.stages``; each is built only when it runs. ``llm`` is the
backend every stage generates with (shared, so one override swaps it everywhere), e.g. an
OpenAI-compatible server instead of the locally trained model:

    corelib run examples/reasoning/config.py 'llm.llm={_target_: llm/openai, model: NAME,
        base_url: "http://127.0.0.1:8000/v1"}'
"""

import sys
from pathlib import Path

import torch

_ROOT = str(Path(__file__).resolve().parents[2])
if _ROOT not in sys.path:  # `corelib run` from anywhere: the stages live in this repository
    sys.path.insert(0, _ROOT)

from corelib import L  # noqa: E402
from examples.reasoning.data import MakeProblems, run_seed  # noqa: E402
from examples.reasoning.lm import (  # noqa: E402
    QUERY_FORMAT,
    TokenBlocks,
    next_token_loss,
    tiny_gpt,
    warmup_then_decay,
)
from examples.reasoning.paths import SamplePaths, load_exemplars  # noqa: E402
from examples.reasoning.pipeline import Pipeline  # noqa: E402
from examples.reasoning.reasoner import TrainReasoner  # noqa: E402
from examples.reasoning.report import Report  # noqa: E402
from examples.reasoning.verify import TrainVerifier  # noqa: E402
from examples.reasoning.yesno import YesNoTask  # noqa: E402

# where every stage writes; `${run_dir}` below refers to it, so one override moves the whole run:
# `corelib run examples/reasoning/config.py run_dir=/tmp/reasoning`
run_dir = "runs/reasoning"
STEPS = 1200  # see docs/main-job.md, "The recipe"

# one node shared by the data, the model's initialisation, the trainer (and its data order) and
# the sampling: `corelib run examples/reasoning/config.py seed.value=1` reseeds them all
seed = L(run_seed)(value=0)

llm = L("llm/cached")(
    llm=L("llm/transformers")(model="${run_dir}/reasoner/model", batch_size=256),
    path="${run_dir}/llm_cache.sqlite",
)
exemplars = L(load_exemplars)(path="${run_dir}/data/val.jsonl")

data = L(MakeProblems)(train=10000, val=200, test=300, seed=seed, min_ops=2, max_ops=3, high=5)

reasoner = L(TrainReasoner)(
    trainer=L("ddp/trainer")(
        strategy=L("ddp/ddp")(),
        optimizer=L(torch.optim.AdamW)(lr=5e-3, weight_decay=0.01, _partial_=True),
        scheduler=L(warmup_then_decay)(warmup_steps=100, total_steps=STEPS, _partial_=True),
        loss_fn=L(next_token_loss)(_partial_=True),
        batch_size=16,
        max_steps=STEPS,
        grad_clip_norm=1.0,
        checkpoint_every=250,
        callbacks=[L("ddp/progress")()],
        seed=seed,
    ),
    model=L(tiny_gpt)(n_layer=4, n_embd=64, n_head=4, n_positions=256, dropout=0.0, seed=seed),
    data=L(TokenBlocks)(block_size=160, passes=2, seed=seed),
    vocab_size=600,
    nproc_per_node=2,
    _recursive_=False,
)

paths = L(SamplePaths)(
    prompts=L("verifiers/diverse_prompts")(
        llm=llm,
        exemplars=exemplars,
        num_prompts=4,  # M1 exemplar sets
        samples_per_prompt=5,  # M2 samples each
        shots=1,
        temperature=0.3,  # best self-consistency on 300 held-out training questions (0.2-0.6 tried)
        max_new_tokens=64,
        seed=seed,
    ),
    train_questions=100,  # the verifier's training paths
    chunk=16,
)

verifier = L(TrainVerifier)(
    # DiVeRSe's step-aware verifier, reading each path through the frozen reasoner: per token, how
    # probable the reasoner found it and how unsure it was (verifiers/step_aware is the
    # from-scratch encoder over words and digits, which does not learn to check sums here)
    verifier=L("verifiers/lm")(
        backbone="${run_dir}/reasoner/model",
        prompt=QUERY_FORMAT,
        alpha=0.1,
        # DiVeRSe's own weighting (each step token weighted alpha in one cross-entropy); on the
        # verifier's validation split it scored as per_path did (docs/main-job.md)
        step_weighting="reference",
        trainer=L("ddp/trainer")(
            optimizer=L(torch.optim.AdamW)(lr=1e-3, _partial_=True),
            batch_size=64,
            max_steps=150,
            callbacks=[L("ddp/progress")()],
            _partial_=True,
        ),
    ),
)

ama = L(YesNoTask)(
    # AMA chains from the shipped arithmetic_claims demonstration set (docs/ama.md); the chain
    # set, sampling and known_balance were chosen on the validation split (docs/main-job.md)
    chains=L("ama/chains")(llm=llm, task="arithmetic_claims", chains=[0, 1, 2]),
    aggregators={
        "majority": L("ama/majority")(cardinality=2),
        "label model": L("ama/label_model")(cardinality=2),
        "AMA's metal label model": L("ama/metal_label_model")(cardinality=2),
    },
    splits=["val", "test"],
    known_balance=True,
    seed=0,
)

report = L(Report)(
    votes={
        "self-consistency (majority)": L("verifiers/majority")(),
        "DiVeRSe voting verifier": L("verifiers/voting")(),
        "best path (verifier)": L("verifiers/best_path")(),
    },
)

main = L(Pipeline)(
    stages={
        "data": data,
        "reasoner": reasoner,
        "paths": paths,
        "verifier": verifier,
        "ama": ama,
        "report": report,
    },
    run_dir="${run_dir}",
    _recursive_=False,
)
