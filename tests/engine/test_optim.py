import io
import math

import pytest
import torch
from torch import nn

from reid_dff.config import ConfigError, get_cfg
from reid_dff.engine.optim import build_optimizer, build_scheduler, split_decay_parameters


class TinyNet(nn.Module):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 4, 3, bias=False)
        self.bn = nn.BatchNorm2d(4)
        self.fc = nn.Linear(4, 2)
        self.neck = nn.BatchNorm1d(4)
        self.neck.bias.requires_grad_(False)  # BNNeck: frozen bias must not reach the optimizer


def solver_cfg(**solver):
    cfg = get_cfg()
    for key, value in solver.items():
        cfg.SOLVER[key] = value
    return cfg


def lrs(cfg, iters_per_epoch):
    opt = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=cfg.SOLVER.BASE_LR)
    sched = build_scheduler(cfg, opt, iters_per_epoch)
    out = []
    for _ in range(cfg.SOLVER.MAX_EPOCHS * iters_per_epoch):
        out.append(opt.param_groups[0]["lr"])
        opt.step()
        sched.step()
    return out


def test_decay_split_exempts_norms_and_biases_and_skips_frozen():
    model = TinyNet()
    decay, no_decay = split_decay_parameters(model)
    assert {id(p) for p in decay} == {id(model.conv.weight), id(model.fc.weight)}
    assert {id(p) for p in no_decay} == {
        id(model.bn.weight),
        id(model.bn.bias),
        id(model.fc.bias),
        id(model.neck.weight),
    }


@pytest.mark.parametrize("name, cls", [("Adam", torch.optim.Adam), ("SGD", torch.optim.SGD)])
def test_build_optimizer_groups(name, cls):
    model = TinyNet()
    opt = build_optimizer(solver_cfg(OPTIMIZER=name, NO_DECAY_NORM_BIAS=True, WEIGHT_DECAY=0.01), model)
    assert isinstance(opt, cls)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01, 0.0]
    opt = build_optimizer(solver_cfg(OPTIMIZER=name, WEIGHT_DECAY=0.01), model)
    assert [g["weight_decay"] for g in opt.param_groups] == [0.01]
    assert sum(len(g["params"]) for g in opt.param_groups) == 6  # all trainable, frozen neck bias left out
    if name == "SGD":
        assert opt.param_groups[0]["momentum"] == 0.9


def test_weight_decay_exemption_changes_the_update():
    # Zero gradient: only weight decay moves a parameter, so exempt parameters stay put.
    model = TinyNet()
    with torch.no_grad():
        for p in model.parameters():
            p.fill_(1.0)
    opt = build_optimizer(
        solver_cfg(OPTIMIZER="SGD", NO_DECAY_NORM_BIAS=True, WEIGHT_DECAY=0.1, BASE_LR=1.0), model
    )
    for p in model.parameters():
        p.grad = torch.zeros_like(p)
    opt.step()
    assert torch.all(model.bn.weight == 1.0) and torch.all(model.fc.bias == 1.0)
    assert torch.allclose(model.fc.weight, torch.full_like(model.fc.weight, 0.9))


def test_multistep_with_warmup_matches_hand_computed_values():
    cfg = solver_cfg(BASE_LR=1.0, MAX_EPOCHS=6, WARMUP_EPOCHS=2, WARMUP_FACTOR=0.1, STEPS=[3, 5], GAMMA=0.5)
    got = lrs(cfg, iters_per_epoch=2)
    # Warm-up over 4 iterations: 0.1 + 0.9 * i / 4; then 1 until epoch 3 (iteration 6), 0.5, 0.25 from epoch 5.
    expected = [0.1, 0.325, 0.55, 0.775, 1.0, 1.0, 0.5, 0.5, 0.5, 0.5, 0.25, 0.25]
    assert got == pytest.approx(expected)


def test_cosine_after_warmup_reaches_the_floor():
    cfg = solver_cfg(
        BASE_LR=2.0, MAX_EPOCHS=5, WARMUP_EPOCHS=1, WARMUP_FACTOR=0.5, SCHEDULER="cosine", MIN_LR_FACTOR=0.1
    )
    got = lrs(cfg, iters_per_epoch=4)
    warm, span = 4, 16
    expected = [2.0 * (0.5 + 0.5 * i / 4) for i in range(warm)]
    expected += [
        2.0 * (0.1 + 0.9 * 0.5 * (1 + math.cos(math.pi * (i - warm) / span))) for i in range(warm, 20)
    ]
    assert got == pytest.approx(expected)
    assert got[4] == pytest.approx(2.0)


def test_scheduler_state_round_trips_through_weights_only_load():
    cfg = solver_cfg(BASE_LR=1.0, MAX_EPOCHS=4, WARMUP_EPOCHS=1, STEPS=[2, 3])
    param = nn.Parameter(torch.zeros(1))
    opt = torch.optim.SGD([param], lr=1.0)
    sched = build_scheduler(cfg, opt, 3)
    for _ in range(5):
        opt.step()
        sched.step()
    buffer = io.BytesIO()
    torch.save(sched.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)

    opt2 = torch.optim.SGD([nn.Parameter(torch.zeros(1))], lr=1.0)
    sched2 = build_scheduler(cfg, opt2, 3)
    sched2.load_state_dict(state)
    opt2.param_groups[0]["lr"] = sched2.get_last_lr()[0]
    for _ in range(6):
        assert opt2.param_groups[0]["lr"] == pytest.approx(opt.param_groups[0]["lr"])
        for o, s in ((opt, sched), (opt2, sched2)):
            o.step()
            s.step()


@pytest.mark.parametrize(
    "solver, match",
    [
        ({"OPTIMIZER": "Adagrad"}, "SOLVER.OPTIMIZER must be one of Adam, SGD, got 'Adagrad'"),
        ({"SCHEDULER": "poly"}, "SOLVER.SCHEDULER must be one of cosine, multistep"),
        ({"STEPS": [40, 20]}, "SOLVER.STEPS must be strictly increasing"),
        ({"WARMUP_FACTOR": 0.0}, r"SOLVER.WARMUP_FACTOR must be in \(0, 1\]"),
        ({"WARMUP_EPOCHS": -1}, "SOLVER.WARMUP_EPOCHS must be >= 0"),
    ],
)
def test_bad_solver_config_names_the_key(solver, match):
    cfg = solver_cfg(**solver)
    model = TinyNet()
    with pytest.raises(ConfigError, match=match):
        build_scheduler(cfg, build_optimizer(cfg, model), 10)


def test_model_without_trainable_parameters_is_an_error():
    model = nn.Linear(2, 2).requires_grad_(False)
    with pytest.raises(ValueError, match="no trainable parameters"):
        build_optimizer(get_cfg(), model)
