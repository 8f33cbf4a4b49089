"""Implicit BC (Florence et al., 2021): an energy model E(o, a); the policy is argmin_a E(o, a).

Training: InfoNCE over one demo action and N counter-examples drawn within the action bounds
(actions are normalised to [-1, 1], so the bounds are the box [-1, 1]^d).

Two ways to find argmin_a, chosen by ``optimizer``:

* ``dfo`` (derivative-free): sample, then iterate (resample by softmax(-E), add shrinking noise);
  counter-examples are uniform samples. The paper shows it degrades above ~5 action dimensions.
* ``langevin`` (the DEFAULT): gradient-based Langevin MCMC chains; a gradient penalty
  (max(0, |dE/da|_inf - M)^2) keeps the energy landscape smooth enough to descend. This is the paper's
  setting for high-dimensional actions, and hand actions have 20-30 dimensions (hb16: 22).

Where the chains start is the ``cpu-small`` preset's main departure from the paper (``paper`` keeps the
paper's uniform starts and counter-examples):

* ``proposal_bank``: the model keeps a ring of training action chunks (a buffer saved with the weights).
  Inference scores all of them, starts chains at the lowest-energy ones and refines them with a few
  small Langevin steps. From uniform starts, 50 Langevin steps in 22 dimensions ended 0.05-0.36 away from
  the demo actions (normalised units) and the policy lifted the cube in 0-2 of 10 episodes; with demo
  proposals and 8-action chunks (176 dimensions, out of reach from uniform starts) it lifts it in most.
  The energy model still does the work: it ranks 4096 demo chunks, none recorded for this observation.
* ``bank_counter_examples``: chunks from the bank as counter-examples (realistic, but other states'),
  which teach exactly the ranking inference needs.
* ``local_counter_examples``: demo actions perturbed by Gaussian noise of log-uniform scale in
  [local_noise_min, local_noise_max], which sharpen the minimum for the refinement steps.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch
from handbench.baselines.common import (
    CPU_SMALL_IMAGE_CHANNELS,
    BaselineModel,
    Generators,
    ObservationEncoder,
    mlp,
    multinomial_rows,
    rand_rows,
    randn_rows,
)
from torch.nn import functional as F

from handbench.training.config import Preset, TrainConfig
from handbench.training.spec import ObsActionSpec

OPTIMIZERS = ("langevin", "dfo")


@dataclass
class IBCConfig:
    obs_steps: int = 1
    # Chunks of 8 actions, all executed before the next query (as BC and ACT here): one-step policies fail
    # lift-cube in closed loop whatever their fit, because experts hold phases on unobserved counters.
    horizon: int = 8
    action_steps: int = 8
    temporal_ensemble_m: float | None = None
    hidden: int = 256
    depth: int = 3
    dropout: float = 0.0
    optimizer: str = "langevin"
    counter_examples: int = 16
    local_counter_examples: int = 16
    local_noise_min: float = 0.01
    local_noise_max: float = 0.3
    temperature: float = 1.0
    # Langevin MCMC: a <- a - step * (0.5 * dE/da + noise * N(0, 1)), step decaying polynomially.
    # Chains start uniform in [-1, 1]^d and must travel up to 2 per dimension: 50 inference steps of
    # up to 0.2 reach the demos' minimum (20 steps of 0.1 stopped ~0.36 away on lift-cube). With a
    # proposal bank, training uses no chains (``langevin_steps`` 0): from uniform starts in 176 dimensions
    # (8 x 22) they stay far from the data and only cost time.
    langevin_steps: int = 0
    langevin_inference_steps: int = 50
    langevin_step_init: float = 0.3
    langevin_step_final: float = 1e-4
    langevin_noise: float = 0.5
    langevin_delta_clip: float = 0.2
    gradient_penalty: float = 1.0
    # The margin bounds the energy's slope; at 1 the landscape was too flat for 50 Langevin steps to settle
    # (InfoNCE 2.4 vs 1.9 at 5 on lift-cube; closed loop 1/20 vs 2/10 on the first eval seeds).
    gradient_margin: float = 5.0
    inference_samples: int = 16
    # Demo proposals (0: off, the paper's uniform starts). A ring of this many training action chunks is
    # kept in the model (filled from the positives it trains on, saved with the weights); inference scores
    # every one with the energy, starts ``inference_samples`` chains at the lowest and refines them with
    # ``langevin_refine_steps`` small Langevin steps; training adds ``bank_counter_examples`` of them as
    # counter-examples (other demos' chunks: realistic but wrong for this observation).
    proposal_bank: int = 4096
    bank_counter_examples: int = 16
    langevin_refine_steps: int = 20
    langevin_refine_step_init: float = 0.02
    # Derivative-free optimisation.
    dfo_samples: int = 1024
    dfo_iterations: int = 3
    dfo_noise: float = 0.33
    dfo_shrink: float = 0.5
    image_channels: tuple[int, ...] = (32, 64, 128)
    image_feature_dim: int = 64


class ImplicitBC(BaselineModel):
    def __init__(self, config: IBCConfig, spec: ObsActionSpec) -> None:
        super().__init__()
        if config.optimizer not in OPTIMIZERS:
            raise ValueError(f"unknown optimizer {config.optimizer!r}; valid: {', '.join(OPTIMIZERS)}")
        self.config, self.spec = config, spec
        self.obs_encoder = ObservationEncoder(spec, config.image_channels, config.image_feature_dim)
        self.action_size = config.horizon * spec.action_dim
        self.energy_net = mlp(self.obs_encoder.out_dim * config.obs_steps + self.action_size, config.hidden, 1,
                              config.depth, config.dropout)
        self.register_buffer("bank", torch.zeros(config.proposal_bank, self.action_size))
        self.register_buffer("bank_filled", torch.zeros((), dtype=torch.long))

    def condition(self, obs: dict[str, torch.Tensor]) -> torch.Tensor:
        return self.obs_encoder(obs["state"], obs.get("images")).flatten(1)

    def energy(self, cond: torch.Tensor, actions: torch.Tensor) -> torch.Tensor:
        """cond (B, C), flat candidate actions (B, N, D) -> energies (B, N); lower is better."""
        cond = cond[:, None].expand(-1, actions.shape[1], -1)
        return self.energy_net(torch.cat([cond, actions], dim=-1)).squeeze(-1)

    def _uniform(self, batch: int, count: int, device: torch.device, generator: Generators = None) -> torch.Tensor:
        return rand_rows((batch, count, self.action_size), generator, device) * 2 - 1

    def _near(self, positive: torch.Tensor, count: int) -> torch.Tensor:
        """``count`` copies of each positive (B, 1, D) moved by noise of log-uniform scale, kept in bounds."""
        c = self.config
        shape = (positive.shape[0], count, 1)
        log_scale = torch.empty(shape, device=positive.device).uniform_(math.log(c.local_noise_min),
                                                                        math.log(c.local_noise_max))
        noise = torch.randn(positive.shape[0], count, positive.shape[-1], device=positive.device)
        return (positive + log_scale.exp() * noise).clamp(-1.0, 1.0)

    def _remember(self, positive: torch.Tensor) -> None:
        """Write the batch's demo chunks (B, D) into the proposal ring."""
        size = self.bank.shape[0]
        slots = (self.bank_filled + torch.arange(positive.shape[0], device=positive.device)) % size
        self.bank[slots] = positive.detach()
        self.bank_filled += positive.shape[0]

    def _bank_items(self) -> torch.Tensor:
        return self.bank[: int(min(self.bank_filled.item(), self.bank.shape[0]))]

    def _best_proposals(self, cond: torch.Tensor, items: torch.Tensor, count: int) -> torch.Tensor:
        """The ``count`` chunks of ``items`` (bank chunks) of lowest energy for each observation -> (B, count, D)."""
        energies = self.energy(cond, items[None].expand(cond.shape[0], -1, -1))
        return items[energies.topk(min(count, len(items)), dim=1, largest=False).indices]

    def langevin(self, cond: torch.Tensor, actions: torch.Tensor, steps: int,
                 generator: Generators = None, step_init: float | None = None) -> torch.Tensor:
        """Run Langevin chains from ``actions`` (B, N, D) inside [-1, 1]; the energy model is not updated."""
        c = self.config
        step_init = c.langevin_step_init if step_init is None else step_init
        cond = cond.detach()
        with torch.enable_grad():
            for k in range(steps):
                fraction = k / max(steps - 1, 1)
                step = (step_init - c.langevin_step_final) * (1 - fraction) ** 2 + c.langevin_step_final
                actions = actions.detach().requires_grad_(True)
                grad = torch.autograd.grad(self.energy(cond, actions).sum(), actions)[0]
                noise = randn_rows(actions.shape, generator, actions.device)
                delta = (step * (0.5 * grad + c.langevin_noise * noise)).clamp(-c.langevin_delta_clip,
                                                                                c.langevin_delta_clip)
                actions = (actions - delta).clamp(-1.0, 1.0)
        return actions.detach()

    def compute_loss(self, batch: dict[str, torch.Tensor]) -> tuple[torch.Tensor, dict[str, float]]:
        c = self.config
        cond = self.condition(batch)
        positive = batch["action"].flatten(1)[:, None]
        negatives = self._uniform(cond.shape[0], c.counter_examples, cond.device)
        if c.optimizer == "langevin":
            negatives = self.langevin(cond, negatives, c.langevin_steps)
        parts = [positive, negatives, self._near(positive, c.local_counter_examples)]
        bank = self._bank_items()
        if c.bank_counter_examples and len(bank):
            parts.append(bank[torch.randint(len(bank), (cond.shape[0], c.bank_counter_examples), device=cond.device)])
        if self.bank.shape[0] and self.training:
            self._remember(positive[:, 0])
        candidates = torch.cat(parts, dim=1)
        # Shuffle the positive's position so the network cannot learn it from order.
        permutation = torch.argsort(torch.rand(candidates.shape[:2], device=cond.device), dim=1)
        candidates = torch.gather(candidates, 1, permutation[..., None].expand_as(candidates))
        target = torch.argmin(permutation, dim=1)  # where index 0 (the positive) went
        penalise = c.optimizer == "langevin" and c.gradient_penalty > 0 and torch.is_grad_enabled()
        if penalise:
            candidates = candidates.detach().requires_grad_(True)
        energies = self.energy(cond, candidates)
        info_nce = F.cross_entropy(-energies / c.temperature, target)
        terms = {"info_nce": info_nce.item()}
        loss = info_nce
        if penalise:
            grad = torch.autograd.grad(energies.sum(), candidates, create_graph=True)[0]
            penalty = F.relu(grad.abs().amax(-1) - c.gradient_margin).pow(2).mean()
            loss = loss + c.gradient_penalty * penalty
            terms["grad_penalty"] = penalty.item()
        return loss, terms

    @torch.no_grad()
    def predict_action(self, obs: dict[str, torch.Tensor], generator: Generators = None) -> torch.Tensor:
        c = self.config
        cond = self.condition(obs)
        b = cond.shape[0]
        bank = self._bank_items()
        if len(bank):
            samples = self._best_proposals(cond, bank, c.inference_samples)
            if c.optimizer == "langevin":
                samples = self.langevin(cond, samples, c.langevin_refine_steps, generator,
                                        step_init=c.langevin_refine_step_init)
        elif c.optimizer == "langevin":
            samples = self._uniform(b, c.inference_samples, cond.device, generator)
            samples = self.langevin(cond, samples, c.langevin_inference_steps, generator)
        else:
            samples = self._uniform(b, c.dfo_samples, cond.device, generator)
            noise = c.dfo_noise
            for _ in range(c.dfo_iterations):
                probs = torch.softmax(-self.energy(cond, samples) / c.temperature, dim=-1)
                picks = multinomial_rows(probs, c.dfo_samples, generator)
                samples = torch.gather(samples, 1, picks[..., None].expand_as(samples))
                jitter = randn_rows(samples.shape, generator, cond.device)
                samples = (samples + noise * jitter).clamp(-1.0, 1.0)
                noise *= c.dfo_shrink
        best = self.energy(cond, samples).argmin(dim=1)
        chosen = samples[torch.arange(b, device=cond.device), best]
        return chosen.reshape(b, c.horizon, self.spec.action_dim)


CONFIG = IBCConfig
MODEL = ImplicitBC
PRESETS = {
    "cpu-small": Preset(IBCConfig(image_channels=CPU_SMALL_IMAGE_CHANNELS),
                        TrainConfig(steps=5000, batch_size=32, lr=5e-4, weight_decay=0.0,
                                    warmup_steps=100)),
    # Paper (Langevin setting): ResNet MLP 512 wide / 8 deep, 256 counter-examples, 100 MCMC iterations with
    # the paper's step sizes and gradient margin, and only the paper's counter-examples.
    "paper": Preset(IBCConfig(horizon=1, action_steps=1, hidden=512, depth=8, dropout=0.1, counter_examples=256,
                              local_counter_examples=0, proposal_bank=0, bank_counter_examples=0,
                              gradient_margin=1.0, langevin_step_init=0.1, langevin_delta_clip=0.1,
                              langevin_steps=100,
                              langevin_inference_steps=100, inference_samples=512),
                    TrainConfig(steps=100_000, batch_size=512, lr=5e-4, weight_decay=0.0, warmup_steps=0)),
}
