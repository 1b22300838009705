"""Search controllers with an ask/tell interface (like Optuna's samplers).

``ask()`` proposes a token sequence (one choice index per decision of the
space); ``tell(tokens, reward)`` reports its reward (``None``: the candidate
failed, and is left out of learning). Every controller draws from its own
seeded generator, so a run is reproducible, and replaying the same asks and
tells rebuilds its state exactly (that is how a search resumes; nothing is
pickled).

* :class:`PPOController`: the paper's controller. An LSTM emits the decisions
  one by one, each step feeding the embedding of the previous choice; it is
  trained with PPO's clipped objective (Schulman et al., 2017) on batches of
  rewards, advantages taken against a moving-average baseline. NumPy, with
  hand-written backpropagation through time (checked against finite
  differences in the tests) and Adam.
* :class:`EvolutionController`: regularized (aging) evolution (Real et al.,
  AAAI 2019): tournament selection, one-decision mutation, oldest removed.
* :class:`RandomController`: uniform random search.
"""

from __future__ import annotations

import random
from abc import ABC, abstractmethod
from collections import defaultdict, deque
from collections.abc import Sequence

import numpy as np

from latprof.errors import SearchError
from latprof.space import SearchSpace

__all__ = [
    "CONTROLLER_NAMES",
    "Controller",
    "EvolutionController",
    "PPOController",
    "RandomController",
    "make_controller",
]

CONTROLLER_NAMES = ("ppo", "evolution", "random")


class Controller(ABC):
    """Proposes architectures of ``space`` as token sequences and learns from their rewards."""

    name = ""

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        self.space = space
        self.seed = seed
        self.sizes = [len(d.choices) for d in space.decisions()]

    @abstractmethod
    def ask(self) -> list[int]:
        """The next candidate's tokens."""

    @abstractmethod
    def tell(self, tokens: Sequence[int], reward: float | None) -> None:
        """The reward of an asked candidate (``None`` if it failed)."""

    @abstractmethod
    def describe(self) -> str:
        """One line: the controller and its settings."""


class RandomController(Controller):
    """Each decision drawn uniformly and independently."""

    name = "random"

    def __init__(self, space: SearchSpace, seed: int = 0) -> None:
        super().__init__(space, seed)
        self.rng = random.Random(seed)

    def ask(self) -> list[int]:
        return [self.rng.randrange(n) for n in self.sizes]

    def tell(self, tokens: Sequence[int], reward: float | None) -> None:
        """Random search learns nothing."""

    def describe(self) -> str:
        return "random: uniform random search"


class EvolutionController(Controller):
    """Regularized evolution: the ``population`` most recent candidates; parents by tournament of ``sample_size``."""

    name = "evolution"

    def __init__(self, space: SearchSpace, seed: int = 0, population: int = 64, sample_size: int = 16) -> None:
        super().__init__(space, seed)
        if not 1 <= sample_size <= population:
            raise SearchError(f"tournament size {sample_size} must be between 1 and the population {population}")
        self.population_size, self.sample_size = population, sample_size
        self.rng = random.Random(seed)
        self.population: deque[tuple[list[int], float]] = deque()
        self.asked = 0

    def ask(self) -> list[int]:
        self.asked += 1
        if self.asked <= self.population_size or not self.population:
            return [self.rng.randrange(n) for n in self.sizes]
        contenders = self.rng.sample(list(self.population), min(self.sample_size, len(self.population)))
        parent = max(contenders, key=lambda member: member[1])[0]
        child = self.space.mutate(self.space.from_tokens(parent), self.rng)
        return self.space.to_tokens(child)

    def tell(self, tokens: Sequence[int], reward: float | None) -> None:
        if reward is None:
            return
        self.population.append((list(tokens), float(reward)))
        if len(self.population) > self.population_size:
            self.population.popleft()

    def describe(self) -> str:
        return (f"evolution: regularized evolution (Real et al., AAAI 2019), population {self.population_size}, "
                f"tournament {self.sample_size}, one-decision mutations")


def _sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (1.0 + np.tanh(0.5 * x))


class PPOController(Controller):
    """An LSTM policy over the space's decisions, trained with PPO (clipped objective, moving-average baseline).

    Every ``batch_size`` rewards, the policy takes ``epochs`` Adam steps on
    ``-mean(min(r A, clip(r, 1-clip, 1+clip) A)) - entropy * mean(H)``, where
    ``r`` is the probability ratio to the policy that sampled the candidate and
    ``A = (reward - baseline) / spread``: the baseline is an exponential moving
    average of rewards (decay ``baseline_decay``), the spread one of squared
    deviations from it, so the same settings work whatever the accuracy
    estimator's scale. The output layers start at zero: the first policy is
    uniform, i.e. random search.
    """

    name = "ppo"

    def __init__(self, space: SearchSpace, seed: int = 0, *, hidden: int = 64, embedding: int = 32,
                 learning_rate: float = 5e-3, batch_size: int = 16, epochs: int = 4, clip: float = 0.2,
                 baseline_decay: float = 0.95, entropy: float = 1e-3, max_grad_norm: float = 5.0) -> None:
        super().__init__(space, seed)
        self.hidden, self.embedding = hidden, embedding
        self.learning_rate, self.batch_size, self.epochs, self.clip = learning_rate, batch_size, epochs, clip
        self.baseline_decay, self.entropy, self.max_grad_norm = baseline_decay, entropy, max_grad_norm
        self.rng = np.random.default_rng(seed)
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)]).astype(int)
        total = int(self.offsets[-1])
        init = np.random.default_rng([seed, 1])

        def u(*shape: int) -> np.ndarray:
            return np.asarray(init.uniform(-0.1, 0.1, shape))

        bias = np.zeros(4 * hidden)
        bias[hidden:2 * hidden] = 1.0  # forget gate starts open
        self.params: dict[str, np.ndarray] = {
            "start": u(embedding), "W": u(embedding + hidden, 4 * hidden), "b": bias,
            "Wo": np.zeros((hidden, total)), "bo": np.zeros(total), "emb": u(total, embedding),
        }
        self._m = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._v = {k: np.zeros_like(v) for k, v in self.params.items()}
        self._steps = 0
        self.baseline: float | None = None
        self.spread2 = 1.0
        self._pending: dict[tuple[int, ...], list[float]] = defaultdict(list)
        self._buffer: list[tuple[list[int], float, float]] = []
        self._queue: deque[tuple[list[int], float]] = deque()
        self.updates = 0

    # ------------------------------------------------------------ the policy

    def _run(self, tokens: np.ndarray | None, batch: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, list]:
        """Unroll the LSTM; sample when ``tokens`` is None. Returns tokens, log-probabilities, entropies, cache."""
        p_ = self.params
        H = self.hidden
        h, c = np.zeros((batch, H)), np.zeros((batch, H))
        x = np.tile(p_["start"], (batch, 1))
        steps = len(self.sizes)
        out = np.empty((batch, steps), dtype=int)
        logp, ent = np.zeros(batch), np.zeros(batch)
        rows = np.arange(batch)
        cache = []
        for t in range(steps):
            xh = np.concatenate([x, h], axis=1)
            z = xh @ p_["W"] + p_["b"]
            i, f, o = _sigmoid(z[:, :H]), _sigmoid(z[:, H:2 * H]), _sigmoid(z[:, 3 * H:])
            g = np.tanh(z[:, 2 * H:3 * H])
            c_new = f * c + i * g
            tc = np.tanh(c_new)
            h_new = o * tc
            lo, hi = self.offsets[t], self.offsets[t + 1]
            logits = h_new @ p_["Wo"][:, lo:hi] + p_["bo"][lo:hi]
            logits = logits - logits.max(axis=1, keepdims=True)
            lp = logits - np.log(np.exp(logits).sum(axis=1, keepdims=True))
            prob = np.exp(lp)
            if tokens is None:
                a = (self.rng.random((batch, 1)) > np.cumsum(prob, axis=1)).sum(axis=1)
                a = np.minimum(a, hi - lo - 1)
            else:
                a = tokens[:, t]
            out[:, t] = a
            logp += lp[rows, a]
            ent -= (prob * lp).sum(axis=1)
            cache.append((xh, c, i, f, g, o, tc, h_new, prob, lp, a))
            x = p_["emb"][lo + a]
            h, c = h_new, c_new
        return out, logp, ent, cache

    def _backward(self, cache: list, dlogp: np.ndarray, dent: np.ndarray) -> dict[str, np.ndarray]:
        """Gradients of a loss with d loss/d logp = ``dlogp`` and d loss/d entropy = ``dent`` (per sample)."""
        p_ = self.params
        H, E = self.hidden, self.embedding
        grads = {k: np.zeros_like(v) for k, v in p_.items()}
        batch = dlogp.shape[0]
        rows = np.arange(batch)
        dh_next, dc_next = np.zeros((batch, H)), np.zeros((batch, H))
        for t in range(len(self.sizes) - 1, -1, -1):
            xh, c_prev, i, f, g, o, tc, h_new, prob, lp, a = cache[t]
            lo, hi = self.offsets[t], self.offsets[t + 1]
            onehot = np.zeros_like(prob)
            onehot[rows, a] = 1.0
            entropy_t = -(prob * lp).sum(axis=1, keepdims=True)
            dlogits = dlogp[:, None] * (onehot - prob) - dent[:, None] * prob * (lp + entropy_t)
            grads["Wo"][:, lo:hi] += h_new.T @ dlogits
            grads["bo"][lo:hi] += dlogits.sum(axis=0)
            dh = dlogits @ p_["Wo"][:, lo:hi].T + dh_next
            dc = dh * o * (1 - tc ** 2) + dc_next
            dz = np.concatenate([dc * g * i * (1 - i), dc * c_prev * f * (1 - f), dc * i * (1 - g ** 2),
                                 dh * tc * o * (1 - o)], axis=1)
            dc_next = dc * f
            grads["W"] += xh.T @ dz
            grads["b"] += dz.sum(axis=0)
            dxh = dz @ p_["W"].T
            dx, dh_next = dxh[:, :E], dxh[:, E:]
            if t == 0:
                grads["start"] += dx.sum(axis=0)
            else:
                np.add.at(grads["emb"], self.offsets[t - 1] + cache[t - 1][-1], dx)
        return grads

    def log_prob(self, tokens: Sequence[Sequence[int]]) -> np.ndarray:
        """Log-probability of each token sequence under the current policy."""
        arr = np.asarray(tokens, dtype=int)
        return self._run(arr, arr.shape[0])[1]

    def loss_and_grads(self, tokens: np.ndarray, advantages: np.ndarray,
                       old_logp: np.ndarray) -> tuple[float, dict[str, np.ndarray]]:
        """The PPO loss on a batch and its gradients with respect to every parameter."""
        batch = tokens.shape[0]
        _, logp, ent, cache = self._run(tokens, batch)
        ratio = np.exp(logp - old_logp)
        clipped = np.clip(ratio, 1 - self.clip, 1 + self.clip)
        loss = -np.minimum(ratio * advantages, clipped * advantages).mean() - self.entropy * ent.mean()
        active = ~(((advantages > 0) & (ratio > 1 + self.clip)) | ((advantages < 0) & (ratio < 1 - self.clip)))
        dlogp = -(advantages * ratio * active) / batch
        dent = np.full(batch, -self.entropy / batch)
        return float(loss), self._backward(cache, dlogp, dent)

    def _adam(self, grads: dict[str, np.ndarray]) -> None:
        norm = np.sqrt(sum(float((g ** 2).sum()) for g in grads.values()))
        scale = min(1.0, self.max_grad_norm / (norm + 1e-12))
        self._steps += 1
        b1, b2 = 0.9, 0.999
        for k, g in grads.items():
            g = g * scale
            self._m[k] = b1 * self._m[k] + (1 - b1) * g
            self._v[k] = b2 * self._v[k] + (1 - b2) * g * g
            m_hat = self._m[k] / (1 - b1 ** self._steps)
            v_hat = self._v[k] / (1 - b2 ** self._steps)
            self.params[k] -= self.learning_rate * m_hat / (np.sqrt(v_hat) + 1e-8)

    # ------------------------------------------------------------ ask / tell

    def ask(self) -> list[int]:
        """The next of a batch sampled at once from the current policy (a new batch after each update)."""
        if not self._queue:
            tokens, logp, _, _ = self._run(None, self.batch_size)
            self._queue = deque(([int(t) for t in row], float(lp)) for row, lp in zip(tokens, logp))
        seq, logp_old = self._queue.popleft()
        self._pending[tuple(seq)].append(logp_old)
        return seq

    def tell(self, tokens: Sequence[int], reward: float | None) -> None:
        key = tuple(int(t) for t in tokens)
        if not self._pending.get(key):
            raise SearchError(f"tell() for tokens {list(key)} that were not asked; tell each asked candidate once")
        old_logp = self._pending[key].pop(0)
        if not self._pending[key]:
            del self._pending[key]
        if reward is None:
            return
        self._buffer.append((list(key), float(reward), old_logp))
        if len(self._buffer) >= self.batch_size:
            self._update()

    def _update(self) -> None:
        tokens = np.array([b[0] for b in self._buffer], dtype=int)
        rewards = np.array([b[1] for b in self._buffer])
        old_logp = np.array([b[2] for b in self._buffer])
        self._buffer = []
        self._queue.clear()  # sampled from the old policy
        if self.baseline is None:
            self.baseline = float(rewards.mean())
            self.spread2 = float(rewards.var()) or 1.0
        deviation = rewards - self.baseline
        advantages = deviation / np.sqrt(self.spread2)
        d = self.baseline_decay
        self.baseline = d * self.baseline + (1 - d) * float(rewards.mean())
        self.spread2 = d * self.spread2 + (1 - d) * float((deviation ** 2).mean())
        for _ in range(self.epochs):
            _, grads = self.loss_and_grads(tokens, advantages, old_logp)
            self._adam(grads)
        self.updates += 1

    def describe(self) -> str:
        return (f"ppo: LSTM policy ({self.hidden} units) over {len(self.sizes)} decisions, PPO clip {self.clip:g}, "
                f"{self.epochs} Adam epochs (lr {self.learning_rate:g}) per batch of {self.batch_size}, "
                f"moving-average baseline (decay {self.baseline_decay:g})")


def make_controller(name: str, space: SearchSpace, seed: int = 0) -> Controller:
    """The controller for ``--controller``: ``ppo``, ``evolution`` or ``random``."""
    classes = {"ppo": PPOController, "evolution": EvolutionController, "random": RandomController}
    if name not in classes:
        raise SearchError(f"unknown controller {name!r}; pass --controller ppo, evolution or random")
    return classes[name](space, seed)
