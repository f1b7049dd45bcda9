"""What a method may use: the benchmark, cached models and queries, the ELBO scorer, and a cost ledger.

Every expensive artefact comes through the store. When a stage obtains an artefact that was built
earlier (in this run or a previous one), the artefact's recorded compute seconds are charged to the
stage, so a method's cost is the same on a cold and on a warm run. A stage also lists the artefacts it
used and what each cost (`used`), so work shared by several stages (a tuning's settings reusing one
feature build) can be counted once.
"""

from __future__ import annotations

import copy
import hashlib
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import replace
from functools import cached_property
from pathlib import Path

import numpy as np
import torch

from guda_bench import progress
from guda_bench.base_model import BaseModel
from guda_bench.benchmark import BACKGROUND, Benchmark
from guda_bench.config import UnlearnConfig
from guda_bench.elbo import ElboScorer
from guda_bench.errors import BenchError
from guda_bench.executor import LocalExecutor, RayExecutor, prebuild_logo
from guda_bench.models import build_scheduler, load_unet, save_unet, set_prediction
from guda_bench.precision import autocast
from guda_bench.provenance import machine_name
from guda_bench.sampling import sample_near, sample_prompted, sample_queries
from guda_bench.store import Artefact, NotCached, Store
from guda_bench.text import TextStack
from guda_bench.train import train_model
from guda_bench.unlearn import unlearn_group

CEILING_SEED_OFFSET = 1000  # seed of the i-th extra LOGO study = run seed + i * offset


def gold_of(studies: list[np.ndarray]) -> np.ndarray:
    """The ground truth from LOGOA matrices of independent LOGO studies: their mean (one study: itself, bit
    for bit). Each study's full-model ELBO is a per-query constant, so averaging changes no ranking but the
    counterfactual noise."""
    return studies[0] if len(studies) == 1 else np.mean(np.stack(studies), axis=0)
# what a query view (Context.on_queries) slices; everything else (models, truth, caches) it shares
QUERY_FIELDS = ("queries_artefact", "queries", "query_ids", "query_index", "query_images", "query_prompts",
                "query_second_prompts", "query_cond", "splits", "scorer")


class Context:
    """Shared state of one run; methods receive it in prepare() and score()."""

    def __init__(self, bench: Benchmark, store: Store, seed: int = 0, device: str = "cpu",
                 executor: LocalExecutor | RayExecutor | None = None, precision: str = "fp32",
                 base_model: BaseModel | None = None) -> None:
        self.bench = bench
        self.executor = executor or LocalExecutor()
        self.preset = bench.preset
        self.store = store
        self.seed = seed
        self.device = device
        self.precision = precision  # "bf16": every build runs under CUDA bf16 autocast, keyed apart from fp32
        # a fine-tune recipe: the pretrained pipeline the models start from (latent space, its own schedule)
        self.base = base_model
        self.scheduler = self.base.scheduler() if self.base else build_scheduler(self.preset.recipe)
        self.data_hash = bench.data_hash()
        self._stage: dict | None = None
        self._depth = 0  # how many artefact builds the current fetch is nested in
        self.waited_s = 0.0  # driver seconds spent waiting on executor tasks (their work is charged as entries)
        self._terms: dict[str, np.ndarray] = {}
        self.probing = False  # inside probe(): a fetch may read the cache, never build
        self.machine = machine_name(device)
        self.query_view: tuple[np.ndarray, str] | None = None  # (indices, name) when this is a query view

    def on_queries(self, indices: np.ndarray, name: str) -> Context:
        """A view that sees only the queries `indices` (e.g. the tuning split), under a queries key of its own.

        Methods score just those queries, and test queries are never touched: `guda-bench tune` scores its
        settings on the tuning view, a quarter of the per-query work. Per-query noise is keyed by the
        original query ids and indices, so a query's value in the view is the one the full run gives it.
        """
        idx = np.asarray(indices, dtype=np.int64)
        parent = self.queries_artefact
        full = {f: getattr(self, f) for f in ("queries", "query_ids", "query_index", "query_images",
                                               "query_prompts", "query_second_prompts", "query_cond")}
        view = copy.copy(self)
        for f in QUERY_FIELDS:
            view.__dict__.pop(f, None)
        view._terms, view._stage, view.query_view = {}, None, (idx, name)
        digest = hashlib.sha256(idx.tobytes()).hexdigest()[:16]
        view.__dict__["queries_artefact"] = Artefact(f"{parent.key}/{name}-{len(idx)}-{digest}", parent.path,
                                                     parent.manifest, built=False)
        for f, value in full.items():
            if value is None:
                view.__dict__[f] = None
            elif isinstance(value, list):
                view.__dict__[f] = [value[i] for i in idx]
            else:
                view.__dict__[f] = value[torch.from_numpy(idx)] if torch.is_tensor(value) else value[idx]
        return view

    @contextmanager
    def probe(self) -> Iterator[None]:
        """Run cache readers with building forbidden: a fetch whose entry is missing raises NotCached, and
        nothing is charged to the stage (the reads that follow the probe are). Lets a parallel executor skip
        the jobs whose entries the driver can already see."""
        saved = self.probing, self._stage
        self.probing, self._stage = True, None
        try:
            yield
        finally:
            self.probing, self._stage = saved

    # ---- cost ledger -------------------------------------------------------------------------------
    @contextmanager
    def stage(self) -> Iterator[dict]:
        """Time a stage: yields a dict that ends with wall seconds and compute cost (incl. cached work), and
        `used`: {artefact key: its cost} for the artefacts the stage built itself or was charged for.

        Cost is the driver's own seconds plus the recorded cost of every cache entry it read, each entry once.
        The driver's seconds exclude its waits on executor tasks (`waited_s`): a task's work is charged when the
        driver reads the entry it built, so counting the wait as well would charge that work twice.

        `machines`: {machine: seconds} of that cost, by where it was measured: the driver's own seconds here,
        each cached entry's on the machine its manifest names (a bundle's, or an older cache's, may be another
        CPU: a cost read from there was not measured here)."""
        record: dict = {"wall_s": 0.0, "cached_cost_s": 0.0, "used": {}, "cached_machines": {}}
        outer, self._stage = self._stage, record
        outer_depth, self._depth = self._depth, 0
        t0, waited0 = time.perf_counter(), self.waited_s
        try:
            yield record
        finally:
            record["wall_s"] = time.perf_counter() - t0
            record["waited_s"] = self.waited_s - waited0
            own = record["wall_s"] - record["waited_s"]
            record["cost_s"] = own + record["cached_cost_s"]
            record["machines"] = add_seconds(dict(record["cached_machines"]), self.machine, own)
            self._stage, self._depth = outer, outer_depth

    def charge_built(self, art: Artefact, inner: dict) -> None:
        """After `art` was built here with its own inner stage: charge the current stage for the cached entries
        that stage read (the stage's wall already holds the build's own seconds)."""
        if art.built and self._stage is not None:
            self._stage["cached_cost_s"] += inner.get("cached_cost_s", 0.0)
            for machine, seconds in inner.get("cached_machines", {}).items():
                add_seconds(self._stage["cached_machines"], machine, seconds)

    def keyed_spec(self, spec: dict) -> dict:
        """The spec an artefact is stored under: a non-fp32 build is keyed apart from fp32."""
        return spec if self.precision == "fp32" else {**spec, "precision": self.precision}

    def fetch(self, kind: str, spec: dict, build: Callable[[Path], dict | None], charge: bool = True) -> Artefact:
        spec = self.keyed_spec(spec)
        if self.precision != "fp32":
            inner = build

            def build(folder: Path) -> dict | None:
                with autocast(self.device, self.precision):
                    return inner(folder)

        outer_build = build

        def build(folder: Path) -> dict | None:
            self._depth += 1
            try:  # the manifest names the machine its cost_s was measured on (bundles carry it to others)
                return {"machine": self.machine, **(outer_build(folder) or {})}
            finally:
                self._depth -= 1

        if self.probing:
            if (cached := self.store.lookup(kind, spec)) is None:
                raise NotCached(kind)
            return cached
        depth = self._depth
        art = self.store.get_or_build(kind, spec, build)
        if charge and self._stage is not None:
            if not art.built:
                if art.key not in self._stage["used"]:  # read twice in one stage (e.g. a repeated LDS subset)
                    self._stage["cached_cost_s"] += art.cost_s
                    add_seconds(self._stage["cached_machines"], art.manifest.get("machine") or "unrecorded",
                                art.cost_s)
                self._stage["used"][art.key] = art.cost_s
            elif depth == 0:  # built by this stage (an artefact built inside another is part of that one's cost)
                self._stage["used"][art.key] = art.cost_s
        return art

    # ---- models ------------------------------------------------------------------------------------
    def model_spec(self, exclude: int | None, seed: int) -> dict:
        data = self.bench.full_model_hash() if exclude is None else self.data_hash
        spec = {"data": data, "exclude": exclude, "model": self.preset.model, "recipe": self.preset.recipe,
                "seed": seed}
        if self.preset.text is not None:  # unconditional benchmarks keep the keys they always had
            spec["text"] = self.preset.text
        if self.base is not None:
            spec["base_model"] = self.base.fingerprint
        if self.preset.pretrain is not None:
            spec["pretrained"] = self.pretrained_key
        return spec

    def _pretrained_spec(self) -> dict:
        if not self.bench.n_background:
            raise BenchError(f"preset {self.preset.name!r} pretrains on the background groups, and every group "
                             f"is a candidate here: pass fewer --targets")
        spec = {"data": self.data_hash, "pretrain_on": "background", "model": self.preset.model,
                "recipe": self.preset.pretrain, "seed": self.seed}
        if self.preset.text is not None:
            spec["text"] = self.preset.text
        return spec

    @property
    def pretrained_key(self) -> str:
        """The base's cache key, computed without building it: a bundle's full model is found without its base."""
        return self.store.key("model", self.keyed_spec(self._pretrained_spec()))

    @cached_property
    def pretrained(self) -> Artefact:
        """The shared start of every model of a pretraining preset: trained on the background groups only (no
        candidate group is in it), once per run seed, and, like the full model, charged to no method."""
        spec = self._pretrained_spec()
        keep = self.bench.members(BACKGROUND)

        def build(folder: Path) -> dict:
            unet = train_model(self.train_data, keep, self.preset.model, self.preset.pretrain, self.seed,
                               self.device, f"pretrain on the background (seed {self.seed})", text=self.preset.text,
                               cond=self.image_cond, scheduler=self.scheduler, null_cond=self.null_cond)
            save_unet(unet.cpu(), folder)
            return {"n_train": int(len(keep))}

        return self.fetch("model", spec, build, charge=False)

    def _start(self) -> torch.nn.Module | None:
        """What a model's training starts from: a base pipeline's UNet, the pretrained model, or none (fresh)."""
        if self.base is not None:
            return self.base.unet()
        if self.preset.pretrain is not None:
            return load_unet(self.pretrained.path, self.device)
        return None

    def trained_model(self, exclude: int | None, seed: int, charge: bool = True) -> Artefact:
        """The full model (exclude=None) or the LOGO model without group `exclude`, trained once, cached."""
        keep = np.arange(len(self.bench.images)) if exclude is None else self.bench.without(exclude)
        name = "full" if exclude is None else f"-{self.bench.group_names[exclude]}"
        return self._train(keep, self.model_spec(exclude, seed), seed, f"train {name} (seed {seed})", charge)

    def subset_model(self, kept_groups: tuple[int, ...], seed: int) -> Artefact:
        """A model trained on the kept groups only (and any background), with LOGO's init and random stream:
        one datamodel of the group LDS truth (guda_bench.lds)."""
        dropped = [k for k in range(self.bench.n_groups) if k not in kept_groups]
        keep = np.flatnonzero(~np.isin(self.bench.group_of, dropped))  # background groups stay in every model
        spec = {**self.model_spec(None, seed), "data": self.data_hash, "kept_groups": list(kept_groups)}
        return self._train(keep, spec, seed, f"train subset {len(kept_groups)}/{self.bench.n_groups} (seed {seed})")

    def _train(self, keep: np.ndarray, spec: dict, seed: int, label: str, charge: bool = True) -> Artefact:
        def build(folder: Path) -> dict:
            unet = train_model(self.train_data, keep, self.preset.model, self.preset.recipe, seed,
                               self.device, label, text=self.preset.text, cond=self.image_cond,
                               init=self._start(), scheduler=self.scheduler,
                               null_cond=self.null_cond)
            save_unet(unet.cpu(), folder)
            return {"n_train": int(len(keep))}

        return self.fetch("model", spec, build, charge)

    # ---- the space the diffusion models live in (pixels, or a base model's VAE latents) ----------------
    @cached_property
    def train_data(self) -> torch.Tensor:
        """What the models are trained on: the images, or their VAE latents for a fine-tune recipe (cached)."""
        if self.base is None:
            return self.bench.images
        spec = {"data": self.data_hash, "base_model": self.base.fingerprint}

        def build(folder: Path) -> None:
            np.save(folder / "latents.npy", self.base.encode(self.bench.images, device=self.device).numpy())

        art = self.fetch("latents", spec, build, charge=False)
        return torch.from_numpy(np.load(art.path / "latents.npy"))

    @cached_property
    def query_images(self) -> torch.Tensor:
        """The queries as images in [-1, 1] (decoded from latents for a fine-tune recipe): for pixel methods."""
        path = self.queries_artefact.path / "images.npy"
        return torch.from_numpy(np.load(path)) if path.exists() else self.queries

    # ---- text conditioning (text-to-image benchmarks) -------------------------------------------------
    @cached_property
    def text_stack(self) -> TextStack | None:
        """The frozen text encoder, or None for an unconditional benchmark."""
        if self.bench.text is None or self.preset.text is None:
            return None
        if self.base is not None:
            return self.base.text_stack()
        return TextStack.tiny(self.bench.text.words(), self.preset.text)

    @cached_property
    def prompt_states(self) -> tuple[torch.Tensor, torch.Tensor] | None:
        """(hidden [P, L, D], pooled [P, D]) of every prompt in bench.text.all_prompts()."""
        stack = self.text_stack
        return None if stack is None else stack.encode(self.bench.text.all_prompts())

    @cached_property
    def image_cond(self) -> torch.Tensor | None:
        """[N, L, D] text hidden states of each training image's prompt (None: unconditional)."""
        if self.prompt_states is None:
            return None
        return self.prompt_states[0][torch.from_numpy(self.bench.text.image_prompt_index())]

    @cached_property
    def null_cond(self) -> torch.Tensor | None:
        """[L, D] hidden states of the empty prompt (prompt dropout, classifier-free guidance)."""
        return None if self.text_stack is None else self.text_stack.encode([""])[0][0]

    @cached_property
    def query_prompts(self) -> np.ndarray | None:
        """[n_queries] index into bench.text.all_prompts() of each query's prompt."""
        if self.bench.text is None:
            return None
        content, style = self.bench.text.query_pairs(self.preset.queries.n_queries)
        return self.bench.text.prompt_index(content, style)

    @cached_property
    def query_second_prompts(self) -> np.ndarray | None:
        """Two-style queries (QueryConfig.mode): index of each query's second prompt (same content)."""
        q = self.preset.queries
        if self.bench.text is None or q.mode != "two-style":
            return None
        content, _ = self.bench.text.query_pairs(q.n_queries)
        return self.bench.text.prompt_index(content, self.bench.text.second_styles(q.n_queries, q.seed))

    @cached_property
    def query_cond(self) -> torch.Tensor | None:
        """[n_queries, L, D] each query's condition: its prompt's hidden states (averaged with its second
        prompt's in two-style mode); sampling, ELBOs and gradients all use it."""
        if self.prompt_states is None:
            return None
        cond = self.prompt_states[0][torch.from_numpy(self.query_prompts)]
        if self.query_second_prompts is not None:
            cond = 0.5 * (cond + self.prompt_states[0][torch.from_numpy(self.query_second_prompts)])
        return cond

    def load(self, art: Artefact) -> torch.nn.Module:
        return set_prediction(load_unet(art.path, self.device), self.preset.recipe, self.scheduler)

    @cached_property
    def full(self) -> Artefact:
        """The model under attribution: given to every method, so its training is charged to none."""
        return self.trained_model(None, self.seed, charge=False)

    @cached_property
    def full_unet(self) -> torch.nn.Module:
        return self.load(self.full)

    # ---- queries -----------------------------------------------------------------------------------
    @cached_property
    def queries_artefact(self) -> Artefact:
        q = self.preset.queries

        anchors = self.bench.query_anchors
        spec: dict = {"full": self.full.key, "queries": q}
        if self.bench.text is not None and self.bench.text.query_styles is not None:  # target styles only
            spec["query_styles"] = list(self.bench.text.query_styles)
        if anchors is not None:  # queries near given images (planted grouping)
            spec.update(anchors=hashlib.sha256(anchors.numpy().tobytes()).hexdigest(), start_t=self.bench.query_t)

        def build(folder: Path) -> None:
            if self.query_cond is not None:
                x = sample_prompted(self.full_unet, self.scheduler, self.query_cond, tuple(self.train_data.shape[1:]),
                                    q.seed, q.inference_steps, q.batch_size, self.device, q.guidance_scale,
                                    self.null_cond)
            elif anchors is None:
                x = sample_queries(self.full_unet, self.scheduler, q.n_queries, q.seed, q.inference_steps,
                                   q.batch_size, self.device)
            else:
                x = sample_near(self.full_unet, self.scheduler, anchors, q.n_queries, q.seed, q.inference_steps,
                                self.bench.query_t, q.batch_size, self.device)
            np.save(folder / "queries.npy", x.numpy())
            if self.base is not None:  # latents: keep the decoded images next to them
                np.save(folder / "images.npy", self.base.decode(x, device=self.device).numpy())

        return self.fetch("queries", spec, build, charge=False)

    @cached_property
    def queries(self) -> torch.Tensor:
        return torch.from_numpy(np.load(self.queries_artefact.path / "queries.npy"))

    @cached_property
    def query_ids(self) -> list[str]:
        return [f"{self.bench.dataset}/{i}" for i in range(len(self.queries))]

    @cached_property
    def query_index(self) -> np.ndarray:
        """Each query's index among the run's queries (a query view keeps the originals: noise is keyed by them)."""
        return np.arange(len(self.queries))

    @cached_property
    def splits(self) -> dict[str, np.ndarray]:
        """A fixed-seed split of query indices: "tune" (choose hyperparameters) and "test" (report)."""
        q = self.preset.queries
        perm = np.random.default_rng(q.split_seed).permutation(len(self.queries))
        n_tune = int(round(q.tune_fraction * len(perm)))
        return {"tune": np.sort(perm[:n_tune]), "test": np.sort(perm[n_tune:])}

    # ---- ELBO terms --------------------------------------------------------------------------------
    @cached_property
    def scorer(self) -> ElboScorer:
        return ElboScorer(self.scheduler, self.preset.elbo, self.queries, self.query_ids, self.device,
                          query_cond=self.query_cond)

    def terms(self, model: Artefact, label: str, loader: Callable[[], torch.nn.Module] | None = None) -> np.ndarray:
        """Cached [n_queries, n_grid] ELBO terms of a model artefact."""
        spec = {"model": model.key, "queries": self.queries_artefact.key, "elbo": self.preset.elbo}

        def build(folder: Path) -> None:
            unet = loader() if loader else self.load(model)
            np.save(folder / "terms.npy", self.scorer.terms(unet, label))

        art = self.fetch("terms", spec, build)
        if art.key not in self._terms:
            self._terms[art.key] = np.load(art.path / "terms.npy")
        return self._terms[art.key]

    def full_terms(self) -> np.ndarray:
        return self.terms(self.full, "ELBO full model", lambda: self.full_unet)

    def elbo_difference(self, counterfactual_terms: list[np.ndarray]) -> np.ndarray:
        """[n_queries, n_groups]: ELBO(full) - ELBO(counterfactual_k) = sum_t terms_k - sum_t terms_full."""
        full = self.full_terms().sum(1)
        return np.stack([t.sum(1) - full for t in counterfactual_terms], axis=1)

    # ---- ground truth ------------------------------------------------------------------------------
    def study_seed(self, study: int) -> int:
        """Training seed of LOGO study `study` (0: coupled to the full model; then the truth's other studies,
        then the noise ceiling's)."""
        return self.seed + study * CEILING_SEED_OFFSET

    def logoa_spec(self, study: int = 0) -> dict:
        seed = self.study_seed(study)
        return {"full": self.full.key, "queries": self.queries_artefact.key, "data": self.data_hash,
                "model": self.preset.model, "recipe": self.preset.recipe, "elbo": self.preset.elbo, "seed": seed}

    def gold(self) -> np.ndarray:
        """The ground truth: LOGOA of study 0, or the mean over the preset's `truth_seeds` studies (SPEC §2)."""
        return gold_of([self.logoa(s) for s in range(self.preset.truth_seeds)])

    def logoa(self, study: int = 0) -> np.ndarray:
        """LOGOA matrix of LOGO study `study` (0 = coupled to the full model; 1..truth_seeds-1 = the truth's
        other studies; the rest = the noise ceiling's).

        Cached as its own artefact (its cost includes the LOGO trainings it used), so a ground-truth
        bundle can carry it to a machine that never trains the LOGO models.
        """
        seed = self.study_seed(study)
        charged: dict[str, float] = {}

        def build(folder: Path) -> dict:
            with self.stage() as inner:
                prebuild_logo(self, seed)
                terms = []
                for k in range(self.bench.n_groups):
                    art = self.trained_model(k, seed)
                    terms.append(self.terms(art, f"ELBO -{self.bench.group_names[k]} (seed {seed})"))
                gold = self.elbo_difference(terms)
            np.save(folder / "logoa.npy", gold)
            charged.update(inner)
            return {"cost_s": inner["cost_s"]}

        art = self.fetch("logoa", self.logoa_spec(study), build)
        self.charge_built(art, charged)  # cached LOGO models used by the build: charge them too
        return np.load(art.path / "logoa.npy")

    # ---- unlearning --------------------------------------------------------------------------------
    def unlearned_terms(self, k: int, cfg: UnlearnConfig) -> np.ndarray:
        """ELBO terms of the full model after an unlearning fine-tune that removes group k (cached)."""
        cfg = replace(cfg, seed=cfg.seed + self.seed)
        spec = {"full": self.full.key, "data": self.data_hash, "group": k, "unlearn": cfg}
        label = f"unlearn -{self.bench.group_names[k]} ({cfg.forget_target})"

        def build(folder: Path) -> None:
            unet = unlearn_group(self.full_unet, self.scheduler, self.train_data, self.bench.group_of, k, cfg,
                                 self.device, label)
            save_unet(unet.cpu(), folder)

        art = self.fetch("unlearned", spec, build)
        return self.terms(art, f"ELBO {label}")

    def log(self, msg: str) -> None:
        progress.log(msg)


def add_seconds(machines: dict[str, float], machine: str, seconds: float) -> dict[str, float]:
    """machines[machine] += seconds (a stage's cost by the machine that measured it); returns machines."""
    if seconds > 0:
        machines[machine] = machines.get(machine, 0.0) + seconds
    return machines
