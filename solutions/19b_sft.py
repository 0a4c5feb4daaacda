"""Solutions to chapter 19b's exercises — try first, then compare."""
import torch

IGNORE_INDEX = -100


def sft_labels(ids: list[int], mask: list[bool]) -> tuple[torch.Tensor, torch.Tensor]:
    "(x, y): x = ids[:-1]; y[t] = ids[t+1] where mask[t+1], else IGNORE_INDEX."
    ids = torch.tensor(ids, dtype=torch.long)
    target_is_assistant = torch.tensor(mask[1:], dtype=torch.bool)    # the mask of the token *predicted*
    y = ids[1:].masked_fill(~target_is_assistant, IGNORE_INDEX)
    return ids[:-1], y


def restart_positions(starts: torch.Tensor) -> torch.Tensor:
    "Position of each token inside its document, [B, T]: 0 at every start (and at column 0)."
    starts = starts.clone()
    starts[:, 0] = True                                                # a window always opens a document
    t = torch.arange(starts.shape[1]).expand_as(starts)
    last_start = torch.where(starts, t, 0).cummax(dim=1).values        # the latest start at or before each token
    return t - last_start


def render_course(messages: list[dict], add_generation_prompt: bool = False) -> str:
    "The course's chat template, written out."
    text = "".join(f"<|{m['role']}|>\n{m['content']}<|end|>\n" for m in messages)
    return text + ("<|assistant|>\n" if add_generation_prompt else "")
