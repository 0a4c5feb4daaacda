"""Chapter 01's exercise checks reject the usual wrong answers, each with a message that names the mistake."""
import torch

from conftest import solutions
from llm_course.data import check_get_batch, check_sequential_batches, check_train_val_split

S = solutions("01_data")


def test_train_val_split():
    assert check_train_val_split(S["train_val_split"])
    def truncating(ids, f=0.1):  # int() instead of round(): 589.6 becomes 589
        cut = int(len(ids) * (1 - f)); return ids[:cut], ids[cut:]
    def shuffled(ids, f=0.1):  # a random split of tokens
        p = ids[torch.randperm(len(ids), generator=torch.Generator().manual_seed(0))]
        cut = round(len(ids) * (1 - f)); return p[:cut], p[cut:]
    def swapped(ids, f=0.1):
        cut = round(len(ids) * (1 - f)); return ids[cut:], ids[:cut]
    def overlap(ids, f=0.1):  # the cut token lands in both pieces
        cut = round(len(ids) * (1 - f)); return ids[:cut + 1], ids[cut:]
    for wrong, words in [(truncating, "round(len(ids)"), (shuffled, "don't shuffle"), (swapped, "train first"),
                         (overlap, "lost or repeated")]:
        r = check_train_val_split(wrong)
        assert not r and r.done and words in r.message, (wrong.__name__, r)


def test_get_batch():
    assert check_get_batch(S["get_batch"])
    def off_by_one(data, B, T, generator=None):  # never draws the last window
        o = torch.randint(len(data) - T - 1, (B,), generator=generator)
        return (torch.stack([data[i:i + T] for i in o]).long(), torch.stack([data[i + 1:i + T + 1] for i in o]).long())
    def unshifted(data, B, T, generator=None):
        x, _ = S["get_batch"](data, B, T, generator); return x, x.clone()
    def backwards(data, B, T, generator=None):
        o = torch.randint(1, len(data) - T, (B,), generator=generator)
        return (torch.stack([data[i:i + T] for i in o]).long(), torch.stack([data[i - 1:i + T - 1] for i in o]).long())
    def no_generator(data, B, T, generator=None):
        return S["get_batch"](data, B, T, None)
    def int32(data, B, T, generator=None):
        x, y = S["get_batch"](data, B, T, generator); return x.int(), y.int()
    def transposed(data, B, T, generator=None):
        x, y = S["get_batch"](data, B, T, generator); return x.T, y.T
    for wrong, words in [(off_by_one, "high is exclusive"), (unshifted, "NEXT tokens"), (backwards, "wrong way"),
                         (no_generator, "generator you are given"), (int32, "int64"), (transposed, "shape (batch_size, block_size)")]:
        r = check_get_batch(wrong)
        assert not r and r.done and words in r.message, (wrong.__name__, r)


def test_sequential_batches():
    assert check_sequential_batches(S["sequential_batches"])
    def drops_last(data, B, T):
        L = (len(data) - 1) // B
        for x, y in S["sequential_batches"](data, B, T):
            if x.shape[1] == T: yield x, y
    def interleaved(data, B, T):  # row b takes data[b::B]
        n = (len(data) - 1) // B * B
        xs, ys = data[:n].view(-1, B).T.long(), data[1:n + 1].view(-1, B).T.long()
        for t0 in range(0, xs.shape[1], T): yield xs[:, t0:t0 + T], ys[:, t0:t0 + T]
    def no_room(data, B, T):  # L = len // B: the last stream runs past the end
        L = len(data) // B
        for t0 in range(0, L, T):
            t = min(T, L - t0)
            idx = torch.arange(B)[:, None] * L + t0 + torch.arange(t + 1)
            xy = data[idx].long(); yield xy[:, :-1], xy[:, 1:]
    def unshifted(data, B, T):
        for x, _ in S["sequential_batches"](data, B, T): yield x, x
    for wrong, words in [(drops_last, "keep the last, shorter step"), (interleaved, "interleave"), (no_room, "IndexError"),
                         (unshifted, "y equals x")]:
        r = check_sequential_batches(wrong)
        assert not r and r.done and words in r.message, (wrong.__name__, r)
