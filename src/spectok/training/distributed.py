"""Multi-process training through ``torchrun`` and PyTorch DDP.

``torchrun --nproc_per_node N -m spectok train tokenizer ...`` sets ``RANK``,
``WORLD_SIZE`` and ``LOCAL_RANK``; :func:`setup` then joins the process group (NCCL on
CUDA, gloo on CPU). Without those variables everything here degrades to one process and
no collective is called.

- :class:`ShardedSampler`: a deterministic shuffle per ``(seed, epoch)``, cut into
  ``world_size`` equal shards (the tail that does not divide evenly is dropped, like
  ``DistributedSampler(drop_last=True)``).
- :class:`EpochStream`: those shards epoch after epoch as ``(epoch, index)`` pairs, for one
  loader over the whole run, starting at any batch of any epoch for exact resume.
- :func:`barrier`, :func:`gather_objects`, :func:`broadcast_buffers`: no-ops on one process.
- :class:`StopSignal`: SIGTERM becomes a clean stop after the current step, on every rank.
- :func:`weights_digest`: a hash of model weights, to check that ranks agree.
"""

from __future__ import annotations

import hashlib
import inspect
import os
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
from torch.utils.data import Sampler

from spectok.errors import SpectokError


@dataclass(frozen=True)
class DistInfo:
    """This process's place in the job: ``rank`` of ``world_size``, ``local_rank`` on its machine."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def env_info() -> DistInfo:
    """Rank and world size from the ``torchrun`` environment (one process when unset)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    return DistInfo(rank=int(os.environ.get("RANK", "0")), world_size=world,
                    local_rank=int(os.environ.get("LOCAL_RANK", "0")))


def pick_device(name: str, info: DistInfo) -> torch.device:
    """``auto`` -> CUDA when available, else CPU; under DDP each process takes ``cuda:LOCAL_RANK``."""
    if name == "auto":
        name = "cuda" if torch.cuda.is_available() else "cpu"
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            raise SpectokError(f"device {name!r} requested but CUDA is not available (use --device cpu)")
        if name == "cuda":
            name = f"cuda:{info.local_rank}" if info.enabled else "cuda"
        device = torch.device(name)
        torch.cuda.set_device(device)
        return device
    if name != "cpu":
        raise SpectokError(f"unknown device {name!r}; choose auto, cpu, cuda or cuda:N")
    return torch.device("cpu")


def setup(device: torch.device, info: DistInfo) -> None:
    """Join the process group (NCCL for CUDA, gloo for CPU) when running under torchrun."""
    if info.enabled and not dist.is_initialized():
        backend = "nccl" if device.type == "cuda" else "gloo"
        dist.init_process_group(backend=backend, rank=info.rank, world_size=info.world_size)


def teardown(clean: bool = True) -> None:
    """Leave the process group.

    ``clean``: every rank got here normally, so wait for all of them first; a rank that
    destroys its gloo group while another still talks to it can abort that one
    ("terminate called without an active exception"). After an error no barrier is
    attempted, since the failed rank may never arrive.
    """
    if dist.is_available() and dist.is_initialized():
        if clean:
            dist.barrier()
        dist.destroy_process_group()


def barrier() -> None:
    """Wait for every rank (no-op on one process)."""
    if dist.is_available() and dist.is_initialized():
        dist.barrier()


def gather_objects(obj: Any) -> list[Any]:
    """Every rank's ``obj``, in rank order, on every rank (``[obj]`` on one process)."""
    if not (dist.is_available() and dist.is_initialized()):
        return [obj]
    out: list[Any] = [None] * dist.get_world_size()
    dist.all_gather_object(out, obj)
    return out


def wrap_ddp(model: torch.nn.Module, device: torch.device, sync_buffers: bool = True,
             find_unused_parameters: bool = False) -> torch.nn.Module:
    """``model`` in DistributedDataParallel; a model without trainable parameters is returned as is.

    ``sync_buffers``: rank 0's buffers are sent to every rank at each wrapped forward
    (``broadcast_buffers``, called ``forward_sync_buffers`` from torch 2.13).
    """
    if not any(p.requires_grad for p in model.parameters()):
        return model
    from torch.nn.parallel import DistributedDataParallel

    params = inspect.signature(DistributedDataParallel).parameters
    sync = "forward_sync_buffers" if "forward_sync_buffers" in params else "broadcast_buffers"
    ids = [device.index] if device.type == "cuda" else None
    return DistributedDataParallel(model, device_ids=ids, find_unused_parameters=find_unused_parameters,
                                   **{sync: sync_buffers})


def broadcast_buffers(models: dict[str, torch.nn.Module]) -> None:
    """Copy rank 0's buffers (e.g. BatchNorm running statistics) to every rank (no-op on one process).

    DDP sends them only at the start of a wrapped forward, so a model also called unwrapped
    (a discriminator inside the generator's loss) or after that forward drifts per rank; the
    engine calls this before validation and checkpoints so every rank agrees with rank 0.
    """
    if not (dist.is_available() and dist.is_initialized()):
        return
    for name in sorted(models):
        for buf in models[name].buffers():
            if buf.dtype == torch.bool:  # gloo has no bool: go through uint8
                tmp = buf.to(torch.uint8)
                dist.broadcast(tmp, src=0)
                buf.copy_(tmp.bool())
            else:
                dist.broadcast(buf.data, src=0)


class StopSignal:
    """SIGTERM (a scheduler's pre-emption, ``kill``) turned into a request to stop cleanly.

    Used as a context manager around the loop: while inside, SIGTERM only sets a flag;
    :meth:`requested` tells every rank whether any rank got one (one tiny all-reduce), so all
    ranks stop after the same step, write a checkpoint and leave. Outside the main thread
    (where handlers cannot be set) it never requests a stop.
    """

    def __init__(self) -> None:
        self.signum: int | None = None
        self._old: dict[int, Any] = {}

    def __enter__(self) -> StopSignal:
        import signal
        import threading

        if threading.current_thread() is threading.main_thread():
            self._old = {signal.SIGTERM: signal.signal(signal.SIGTERM, self._handle)}
        return self

    def __exit__(self, *exc: object) -> None:
        import signal

        for sig, old in self._old.items():
            signal.signal(sig, old)
        self._old = {}

    def _handle(self, signum: int, frame: Any) -> None:
        self.signum = signum

    def requested(self, device: torch.device) -> bool:
        return any_rank([self.signum is not None], device)[0]


def any_rank(flags: list[bool], device: torch.device) -> list[bool]:
    """Each flag OR-ed over every rank (one all-reduce), so every rank takes the same branch."""
    if not (dist.is_available() and dist.is_initialized()):
        return list(flags)
    t = torch.tensor([float(f) for f in flags], device=device)
    dist.all_reduce(t, op=dist.ReduceOp.MAX)
    return [bool(v > 0) for v in t.tolist()]


def weights_digest(models: dict[str, torch.nn.Module]) -> str:
    """SHA-1 (16 hex digits) over the names, shapes and bytes of every parameter and buffer."""
    h = hashlib.sha1()
    for name in sorted(models):
        for key, t in sorted(models[name].state_dict().items()):
            h.update(f"{name}.{key}:{tuple(t.shape)}:{t.dtype}".encode())
            h.update(t.detach().cpu().contiguous().view(-1).view(torch.uint8).numpy().tobytes())
    return h.hexdigest()[:16]


class ShardedSampler:
    """Indices of one rank's shard of each epoch, deterministic given ``(seed, epoch)``; what
    :class:`EpochStream` walks through.

    Args:
        size: items in the data set.
        seed: shuffle seed (same on every rank).
        shuffle: permute per epoch (training) or keep the order (validation).
        rank, world_size: this process's shard.

    Each epoch's order is ``randperm(size)`` from a generator seeded with ``seed`` and the
    epoch, truncated to a multiple of ``world_size``; rank r takes every world_size-th
    index starting at r.
    """

    def __init__(self, size: int, seed: int = 0, shuffle: bool = True, rank: int = 0, world_size: int = 1) -> None:
        if size < world_size:
            raise SpectokError(f"data set of {size} items cannot be sharded over {world_size} processes")
        self.size, self.seed, self.shuffle = size, int(seed), shuffle
        self.rank, self.world_size = rank, world_size

    def shard(self, epoch: int) -> list[int]:
        """This rank's full list of indices for ``epoch``."""
        if self.shuffle:
            g = torch.Generator().manual_seed(self.seed * 1_000_003 + epoch)
            order = torch.randperm(self.size, generator=g).tolist()
        else:
            order = list(range(self.size))
        usable = self.size - self.size % self.world_size
        return order[:usable][self.rank::self.world_size]


class EpochStream(Sampler[tuple[int, int]]):
    """An endless stream of ``(epoch, index)`` pairs: epoch after epoch of ``sampler``'s shard.

    Each epoch is cut to whole batches (``batches_per_epoch * batch_size`` items), so batches
    never straddle two epochs; the stream starts at batch ``start_batch`` of ``start_epoch``.
    One DataLoader iterator (and one set of workers) then serves the whole run, and the
    epoch travels with each index to the worker that loads it (see
    :class:`spectok.data.datasets.EpochIndexed`).
    """

    def __init__(self, sampler: ShardedSampler, batch_size: int, start_epoch: int = 0, start_batch: int = 0) -> None:
        self.sampler, self.batch_size = sampler, batch_size
        self.batches_per_epoch = len(sampler.shard(0)) // batch_size
        if self.batches_per_epoch == 0:
            raise SpectokError(f"a shard of {len(sampler.shard(0))} items holds no full batch of {batch_size}")
        self.start_epoch, self.start_batch = start_epoch, start_batch

    def __iter__(self) -> Iterator[tuple[int, int]]:
        epoch, start = self.start_epoch, self.start_batch * self.batch_size
        while True:
            for index in self.sampler.shard(epoch)[start:self.batches_per_epoch * self.batch_size]:
                yield epoch, index
            epoch, start = epoch + 1, 0
