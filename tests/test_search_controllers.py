"""Controllers: PPO's gradients and learning, regularized evolution's selection and aging, seeded reproducibility.

Rewards here are toy functions of the tokens (no latency or accuracy model):
they test the controllers' mechanics, not an architecture search.
"""

from __future__ import annotations

import numpy as np
import pytest

from latprof.errors import SearchError
from latprof.search import EvolutionController, PPOController, RandomController
from latprof.space import get_space

SPACE = get_space("mnasnet")


def zeros_reward(tokens) -> float:
    """Share of decisions set to their first choice: maximal for one known token sequence."""
    return float(np.mean(np.asarray(tokens) == 0))


def run(controller, samples: int, batch: int = 16, reward=zeros_reward) -> list[tuple[list[int], float]]:
    history = []
    for _ in range(samples // batch):
        asked = [controller.ask() for _ in range(batch)]
        for tokens in asked:
            r = reward(tokens)
            controller.tell(tokens, r)
            history.append((tokens, r))
    return history


def test_ppo_gradients_match_finite_differences():
    c = PPOController(SPACE, seed=3, hidden=8, embedding=4, entropy=0.05)
    rng = np.random.default_rng(0)
    for key in c.params:  # move away from the all-zero output layer so every path carries gradient
        c.params[key] = c.params[key] + rng.normal(0, 0.3, c.params[key].shape)
    tokens = np.array([c.ask() for _ in range(5)])
    advantages = rng.normal(size=5)
    old_logp = c.log_prob(tokens) + rng.normal(0, 0.3, 5)  # some ratios outside the clip range
    _, grads = c.loss_and_grads(tokens, advantages, old_logp)
    checked = 0
    for key, grad in grads.items():
        flat = c.params[key].reshape(-1)
        for i in rng.choice(flat.size, min(6, flat.size), replace=False):
            value, eps = flat[i], 1e-6
            flat[i] = value + eps
            up = c.loss_and_grads(tokens, advantages, old_logp)[0]
            flat[i] = value - eps
            down = c.loss_and_grads(tokens, advantages, old_logp)[0]
            flat[i] = value
            assert (up - down) / (2 * eps) == pytest.approx(grad.reshape(-1)[i], abs=1e-6), (key, i)
            checked += 1
    assert checked >= 30


def test_ppo_starts_uniform_and_learns_a_toy_reward_better_than_random():
    ppo = PPOController(SPACE, seed=0)
    first = ppo.ask()
    expected = -sum(np.log(len(d.choices)) for d in SPACE.decisions())
    assert ppo.log_prob([first])[0] == pytest.approx(expected)  # zero output layer: uniform policy
    ppo.tell(first, zeros_reward(first))
    ppo_hist = run(ppo, 480)[-64:]
    random_hist = run(RandomController(SPACE, seed=0), 480)[-64:]
    ppo_mean = np.mean([r for _, r in ppo_hist])
    random_mean = np.mean([r for _, r in random_hist])
    assert ppo.updates >= 29
    assert ppo_mean > random_mean + 0.15, (ppo_mean, random_mean)


@pytest.mark.parametrize("cls", [PPOController, EvolutionController, RandomController])
def test_a_seed_fixes_the_whole_sequence_of_proposals(cls):
    a = [t for t, _ in run(cls(SPACE, seed=7), 96)]
    b = [t for t, _ in run(cls(SPACE, seed=7), 96)]
    c = [t for t, _ in run(cls(SPACE, seed=8), 96)]
    assert a == b
    assert a != c
    assert all(SPACE.from_tokens(t) for t in a)  # every proposal is a valid architecture of the space


def test_ppo_refuses_a_tell_for_tokens_it_did_not_propose():
    ppo = PPOController(SPACE, seed=0)
    tokens = ppo.ask()
    other = [0] * len(tokens) if tokens != [0] * len(tokens) else [1] + tokens[1:]
    with pytest.raises(SearchError, match="not asked"):
        ppo.tell(other, 1.0)


def test_ppo_leaves_failed_candidates_out_of_its_batches():
    ppo = PPOController(SPACE, seed=0, batch_size=4)
    for _ in range(4):
        ppo.tell(ppo.ask(), None)
    assert ppo.updates == 0
    asked = [ppo.ask() for _ in range(4)]
    for t in asked:
        ppo.tell(t, 0.5)
    assert ppo.updates == 1


def test_regularized_evolution_mutates_the_tournament_winner_and_ages_out_the_oldest():
    evo = EvolutionController(SPACE, seed=1, population=8, sample_size=8)
    initial = [evo.ask() for _ in range(8)]
    for i, tokens in enumerate(initial):
        evo.tell(tokens, 10.0 if i == 3 else 1.0)
    # The tournament covers the whole population, so every child comes from member 3.
    for _ in range(5):
        child = evo.ask()
        assert sum(a != b for a, b in zip(child, initial[3])) == 1
        assert SPACE.layers(SPACE.from_tokens(child)) != SPACE.layers(SPACE.from_tokens(initial[3]))
    # Aging: four more tells push out the four oldest members, the winner (index 3) among them.
    for k in range(4):
        evo.tell(initial[0], 0.5)
    members = [t for t, _ in evo.population]
    assert len(members) == 8 and initial[3] not in members[:4] and max(r for _, r in evo.population) == 1.0


def test_evolution_ignores_failed_candidates():
    evo = EvolutionController(SPACE, seed=1, population=4, sample_size=2)
    for _ in range(4):
        evo.tell(evo.ask(), None)
    assert len(evo.population) == 0
    assert len(evo.ask()) == len(SPACE.decisions())  # still proposes (random until it has members)
