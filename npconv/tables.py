"""The command's tables, laid out for the width they are printed at (npconv.cli).

Every table is a `Grid`: columns of a kind, rows of rich-markup cells, an optional totals
row. Printed with `console.print(grid)`, it picks its layout for the width it gets:

* wide: one rich table, one line per row, when every column fits at full width, text
  columns wrapped at spaces down to their longest word;
* stacked, below that: one block per row. Its first line holds the row's name and its
  short text (layer, type, output shape), aligned in columns when they fit; its numbers
  follow on indented lines, aligned under a header printed once, packed into as many
  lines as the width needs; long text (a description, other ops) gets lines of its own.

In both, a name or a number is never wrapped, folded or cut: it appears whole, with its
thousands separators, or the layout changes. (A single name wider than the whole line is
the one thing that cannot fit; it overflows the line rather than being cut.)

Width: `COLUMNS` when set (a terminal or not); otherwise the terminal's width; otherwise
(a pipe or a file) unlimited, so that tables are as wide as their content and every
sentence is one line (`make_console`).

Timings: `timing_note` applies the command's one rule to the medians of repeated runs and
their spreads: when any contender's slowest run took more than NOISE_RATIO times its
fastest, the timing is called noisy and nothing is ranked.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass

__all__ = ["Col", "Grid", "NOISE_RATIO", "PIPE_WIDTH", "backward_grid", "escape", "fmt_range", "fmt_time",
           "make_console", "ratio_cell", "spread_ratio", "summary_grid", "timing_note", "verify_grid"]

PIPE_WIDTH = 10_000
"""The width of output that goes to a pipe or a file with COLUMNS unset: in effect unlimited."""

NOISE_RATIO = 1.5
"""A timing is noisy when any contender's slowest run took more than this times its fastest."""

_STACK_INDENT = 2
_GAP = 2          # spaces between columns, in both layouts
_NAME_MIN = 12    # stacked: below this, names and their short text are not aligned in columns


# ----------------------------------------------------------------------------- console


def make_console(stderr: bool = False):
    """A rich Console for the command's output (ImportError without rich). Width: COLUMNS
    when set to a positive integer, else the terminal's, else PIPE_WIDTH (a pipe or a file:
    nothing wraps)."""
    from rich.console import Console

    columns = os.environ.get("COLUMNS", "").strip()
    width = int(columns) if columns.isdigit() and int(columns) > 0 else None
    if width is None and not Console(stderr=stderr).is_terminal:
        width = PIPE_WIDTH
    return Console(stderr=stderr, highlight=False, width=width)


# ----------------------------------------------------------------------------- the grid


@dataclass(frozen=True)
class Col:
    """A column. kind:
    "name"  the row's name (layer, model): never wrapped or folded;
    "num"   a number or a short figure ("1,024 =", "0.37", "12.5 ms"): never wrapped or cut;
    "text"  short text (type, shape): wraps at spaces in the wide layout, shares the name's
            line in the stacked one;
    "long"  prose (a description, other ops): wraps at spaces; lines of its own when stacked
            (after "header:" when `label`), unless the column fits whole at the end of the
            last line of numbers.
    min_width: how narrow a "long" column may be squeezed in the wide layout (its longest
    word, if longer)."""

    header: str
    kind: str = "num"
    justify: str = "right"
    label: bool = False
    min_width: int = 30


def _text(cell):
    from rich.text import Text

    if cell is None or cell == "":
        return Text("")
    return cell.copy() if isinstance(cell, Text) else Text.from_markup(str(cell))


def _longest_word(text) -> int:
    from rich.cells import cell_len

    return max((cell_len(word) for word in text.plain.split()), default=0)


class Grid:
    """A table that lays itself out for the width it is printed at (module docstring)."""

    def __init__(self, columns, title: str | None = None):
        self.columns = list(columns)
        self.title = title
        self.rows: list[list] = []
        self.footer: list | None = None

    def add_row(self, *cells) -> None:
        cells = list(cells) + [""] * (len(self.columns) - len(cells))
        self.rows.append([_text(c) for c in cells])

    def add_total(self, *cells) -> None:
        """The totals row: below a rule, in both layouts."""
        cells = list(cells) + [""] * (len(self.columns) - len(cells))
        self.footer = [_text(c) for c in cells]

    def _all_rows(self):
        return self.rows + ([self.footer] if self.footer else [])

    # ----------------------------------------------------------------- layouts

    def wide_widths(self, width: int) -> list[int] | None:
        """Content widths of the wide layout's columns at `width`, or None when it does not fit."""
        from rich.cells import cell_len

        low, high = [], []
        for i, col in enumerate(self.columns):
            cells = [row[i] for row in self._all_rows()]
            full = max((c.cell_len for c in cells), default=0)
            words = max((_longest_word(c) for c in cells), default=0)
            head_word = max((cell_len(w) for w in col.header.split()), default=0)
            if col.kind in ("name", "num"):
                lo = max(full, head_word)
            elif col.kind == "text":
                lo = max(words, head_word)
            else:
                lo = max(words, head_word, min(full, col.min_width))
            low.append(lo)
            high.append(max(full, cell_len(col.header), lo))
        gaps = _GAP * (len(self.columns) - 1)
        if sum(high) + gaps <= width:
            return high
        if sum(low) + gaps > width:
            return None
        widths, spare = low[:], width - gaps - sum(low)
        for kinds in (("text", "long"), ("name", "num")):  # text first, then headers of number columns
            while spare:
                grow = [i for i, col in enumerate(self.columns) if col.kind in kinds and widths[i] < high[i]]
                if not grow:
                    break
                for i in grow[:spare]:
                    widths[i] += 1
                    spare -= 1
        return widths

    def _wide(self, widths):
        from rich import box
        from rich.table import Table

        table = Table(box=box.SIMPLE, show_edge=False, pad_edge=False, collapse_padding=True, padding=(0, 1),
                      header_style="bold", footer_style="bold", show_footer=self.footer is not None)
        for i, (col, w) in enumerate(zip(self.columns, widths)):
            table.add_column(col.header, justify=col.justify, width=w, overflow="fold", no_wrap=False,
                             footer=self.footer[i] if self.footer else "")
        for row in self.rows:
            table.add_row(*row)
        return table

    def _stacked(self, width: int) -> list:
        """The stacked layout's lines (module docstring)."""
        from rich.cells import cell_len
        from rich.console import Console
        from rich.text import Text

        cols = self.columns
        head = [0] + [i for i, c in enumerate(cols) if i and c.kind in ("name", "text")]
        nums = [i for i, c in enumerate(cols) if i and c.kind == "num"]
        longs = [i for i, c in enumerate(cols) if i and c.kind == "long"]
        rows = self._all_rows()
        wrapper = Console(width=max(width, 1))  # for Text.wrap, which wraps at the width it is given

        def col_width(i):
            return max([cell_len(cols[i].header)] + [row[i].cell_len for row in rows])

        head_widths = [col_width(i) for i in head]
        # the name column narrows to what the line leaves; a longer name gets a line of its own
        head_widths[0] = min(head_widths[0], width - sum(head_widths[1:]) - _GAP * (len(head) - 1))
        aligned = head_widths[0] >= min(col_width(0), _NAME_MIN)

        def pack(widths):
            """Number columns (then long ones that fit whole) into lines of at most `width`."""
            bands, band, used = [], [], _STACK_INDENT
            for i in nums:
                if band and used + _GAP + widths[i] > width:
                    bands.append(band)
                    band, used = [], _STACK_INDENT
                used += (_GAP if band else 0) + widths[i]
                band.append((i, widths[i]))
            if band:
                bands.append(band)
            joined = []
            for i in longs:
                if bands and used + _GAP + widths[i] <= width:
                    bands[-1].append((i, widths[i]))
                    used += _GAP + widths[i]
                    joined.append(i)
            return bands, joined

        def word_width(i):  # headers may wrap at spaces, cells may not
            words = max(cell_len(word) for word in cols[i].header.split() or [""])
            return max([words] + [row[i].cell_len for row in rows])

        full = {i: col_width(i) for i in nums + longs}
        narrow = {i: word_width(i) for i in nums + longs}
        bands, joined = pack(full)
        narrow_bands, narrow_joined = pack(narrow)
        if (len(narrow_bands), -len(narrow_joined)) < (len(bands), -len(joined)):
            bands, joined = narrow_bands, narrow_joined
        longs = [i for i in longs if i not in joined]

        def line(parts, indent=0):
            text = Text(" " * indent, no_wrap=True, overflow="ignore")
            for k, (cell, w, justify) in enumerate(parts):
                if k:
                    text.append(" " * _GAP)
                piece = cell.copy()
                piece.align(justify, max(w, piece.cell_len))
                text.append_text(piece)
            text.rstrip()
            return text

        def head_lines(cells, style=None):
            if aligned:
                out = []
                if cells[0].cell_len > head_widths[0]:
                    out.append(cells[0].copy())
                    cells = [Text("")] + cells[1:]
                if any(cells[i].plain for i in head):
                    out.append(line([(cells[i], w, cols[i].justify if i else "left")
                                     for i, w in zip(head, head_widths)]))
            else:
                text = Text(" " * _GAP).join([cells[i] for i in head if cells[i].plain])
                out = list(text.wrap(wrapper, max(width, 1)))
            for text in out:
                text.no_wrap, text.overflow = True, "ignore"
                if style:
                    text.stylize(style)
            return out

        def record(cells) -> list:
            out = head_lines(cells)
            for band in bands:
                if any(cells[i].plain for i, _ in band):
                    out.append(line([(cells[i], w, cols[i].justify) for i, w in band], _STACK_INDENT))
            for i in longs:
                if not cells[i].plain:
                    continue
                body = (Text(f"{cols[i].header}: ", style="dim") if cols[i].label else Text("")) + cells[i]
                inner = max(width - 2 * _STACK_INDENT, 1)
                for piece in body.wrap(wrapper, inner):
                    piece.rstrip()
                    out.append(Text(" " * 2 * _STACK_INDENT) + piece)
            return out

        header_cells = [Text(c.header) for c in cols]
        lines = head_lines(header_cells, "bold")
        for band in bands:  # headers wrapped to their column, bottom-aligned
            wrapped = [list(Text(cols[i].header).wrap(wrapper, w)) for i, w in band]
            depth = max(len(h) for h in wrapped)
            for k in range(depth):
                parts = []
                for (i, w), h in zip(band, wrapped):
                    piece = h[k - depth + len(h)] if k >= depth - len(h) else Text("")
                    piece.rstrip()
                    parts.append((piece, w, cols[i].justify))
                lines.append(line(parts, _STACK_INDENT))
                lines[-1].stylize("bold")
        body = [record(row) for row in self.rows]
        total = record(self.footer) if self.footer else []
        rule_width = min(width, max([t.cell_len for t in lines] + [t.cell_len for r in body for t in r] + [1]))
        rule = Text("─" * rule_width, style="dim")
        lines.append(rule)
        for r in body:
            lines += r
        if total:
            lines.append(rule)
            for t in total:
                t.stylize("bold")
            lines += total
        return lines

    def __rich_console__(self, console, options):
        from rich.text import Text

        width = options.max_width
        if self.title:
            yield Text(self.title, style="bold")
        widths = self.wide_widths(width)
        if widths is not None:
            yield self._wide(widths)
            return
        lines = self._stacked(width)
        yield Text("\n", no_wrap=True, overflow="ignore").join(lines)


# ----------------------------------------------------------------------------- cells


def ratio_cell(check) -> str:
    """A node check's error / bound (or the ratio itself); "exact" when PyTorch and npconv
    agree bit for bit."""
    ratio = check if isinstance(check, float) else check.ratio
    if ratio != ratio or ratio == float("inf"):
        return "[bold red]✗ ∞[/]"
    if not isinstance(check, float) and check.max_error == 0:
        return "[green]exact[/]"
    if ratio <= 1:  # rounded down, so that 0.99996 does not print as a borderline 1.00
        return f"[green]{math.floor(ratio * 100) / 100:.2f}[/]"
    return f"[bold red]{math.ceil(ratio * 100) / 100:.2f}[/]"


def _sig3(value: float) -> str:
    """3 significant digits, trailing zeros kept: "3.00", "13.0", "118", "0.0523"."""
    return format(value, "#.3g").rstrip(".") if value > 0 else "0"


def fmt_time(seconds) -> str:
    """3 significant digits, in ms below a second: "0.523 ms", "12.3 ms", "452 ms", "2.23 s"."""
    if seconds is None:
        return "—"
    if seconds * 1e3 < 999.5:
        return f"{_sig3(seconds * 1e3)} ms"
    return f"{_sig3(seconds)} s"


def fmt_range(low, high) -> str:
    """A fastest–slowest spread in one unit (the slowest's), 3 significant digits each:
    "11.8–13.0 ms", "3.00–118 ms", "2.10–2.41 s"."""
    if high * 1e3 < 999.5:
        return f"{_sig3(low * 1e3)}–{_sig3(high * 1e3)} ms"
    return f"{_sig3(low)}–{_sig3(high)} s"


def spread_ratio(low, high) -> float:
    """Slowest over fastest run (1 when both are 0)."""
    if high <= 0:
        return 1.0
    return high / low if low > 0 else float("inf")


def _factor(r: float) -> str:
    return f"{r:.0f}×" if r >= 10 else f"{r:.1f}×"


def timing_note(contenders) -> str:
    """One clause on timings (lower case, to follow a colon or a semicolon): `contenders`
    are (label, median, fastest run, slowest run) of repeated runs.

    The rule: if any contender's slowest run took more than NOISE_RATIO times its fastest,
    "timing is noisy here" and nothing is ranked. Otherwise every median is given relative
    to the fastest median, and a contender whose min–max range overlaps the fastest's is
    said to be indistinguishable from it rather than ranked."""
    contenders = [c for c in contenders if c[1] is not None]
    if not contenders:
        return ""
    noisy = [(label, spread_ratio(lo, hi)) for label, _, lo, hi in contenders if spread_ratio(lo, hi) > NOISE_RATIO]
    if noisy:
        label, r = max(noisy, key=lambda item: item[1])
        return (f"[yellow]timing is noisy here[/]: {label}'s slowest run took {_factor(r)} its fastest (more than "
                f"{NOISE_RATIO:g}×), so nothing is ranked; rerun on a quiet machine, or see bench/.")
    ranked = sorted(contenders, key=lambda c: c[1])
    best_label, best, _, best_high = ranked[0]
    if len(ranked) == 1:
        return f"every run within {NOISE_RATIO:g}× of its fastest."
    parts = []
    for label, median, low, _ in ranked[1:]:
        if low <= best_high:
            parts.append(f"{label} {_factor(median / best)} (ranges overlap: no clear difference)")
        else:
            parts.append(f"{label} {_factor(median / best)}")
    return f"every run within {NOISE_RATIO:g}× of its fastest; medians relative to the fastest ({best_label}): " \
           + ", ".join(parts) + "."


# ----------------------------------------------------------------------------- the command's grids


def escape(text) -> str:
    """`text` with rich markup's square brackets escaped (rich imported here)."""
    from rich.markup import escape

    return escape(str(text))


def _shape(shape) -> str:
    return "" if not shape else "×".join(str(s) for s in shape)


def verify_grid(report, title: str) -> Grid:
    """npconv verify's table: one row per module, its counts against the formula and
    FlopCounterMode/2, and the worst node check of the module in float32 and float64
    (error / bound; "exact" when bit for bit)."""
    checks32, checks64 = report.module_checks(report.checks32), report.module_checks(report.checks64)
    grid = Grid([Col("layer", "name", "left"), Col("type", "text", "left"), Col("output", "text", "left"),
                 Col("params"), Col("MACs"), Col("formula"), Col("FCM/2"), Col("f32 err/bound"),
                 Col("f64 err/bound")], title=title)
    for row in report.summary.rows:
        params = f"{row.params:,}" if row.params else ""
        if row.torch_params is not None and row.params and row.torch_params == row.params:
            params += " [green]=[/]"
        formula = "[dim]—[/]" if row.formula is None else (
            f"[bold red]{row.formula.get('macs', 0):,}[/]" if row.mismatches else ("[green]=[/]" if row.macs else ""))
        fc = row.flop_counter_macs
        fc_cell = "" if fc is None else ("[green]=[/]" if fc == row.macs and row.macs else
                                         ("" if fc == row.macs else f"[bold red]{fc:,}[/]"))
        c32, c64 = checks32.get(row.name), checks64.get(row.name)
        name = escape(row.name or "(model)")
        if row.mismatches or row.disagreements or (c32 and not c32.ok) or (c64 and not c64.ok):
            name = f"[bold red]{name}[/]"
        grid.add_row(name, escape(row.type), _shape(row.output_shape), params,
                     f"{row.macs:,}" if row.macs else "", formula, fc_cell,
                     ratio_cell(c32) if c32 else "", ratio_cell(c64) if c64 else "")
    t = report.summary.total
    grid.add_total("total", "", "", f"{t['params']:,}", f"{t['macs']:,}", "",
                   "" if t.get("flop_counter_macs") is None else f"{t['flop_counter_macs']:,}")
    return grid


def _params_cell(row) -> str:
    parts = [(row.weight_params, "w"), (row.bias_params, "b"), (row.bn_params, "bn")]
    return " + ".join(f"{n:,} {label}" for n, label in parts if n)


def summary_grid(result, title: str) -> Grid:
    """npconv summary's table of a `npconv.summary.Summary` ."""
    from .cost.summary import _compact, _intensity, _other_ops

    fc = result.flop_counter
    columns = [Col("layer", "name", "left"), Col("type", "text", "left"), Col("output", "text", "left"),
               Col("params"), Col("MACs"), Col("formula"), Col("padding"), Col("other ops", "long", "left", label=True,
                   min_width=14),
               Col("bytes"), Col("MAC/B")] + ([Col("FCM/2")] if fc else [])
    grid = Grid(columns, title=title)
    for row in result.rows:
        if row.formula is None:
            formula = "[dim]—[/]"
        elif row.mismatches:
            formula = f"[bold red]{row.formula.get('macs', 0):,} ✗[/]"
        else:
            formula = "[green]=[/]" if row.macs else "[dim]=[/]"
        name = escape(row.name or "(model)")
        if row.mismatches or row.disagreements:
            name = f"[bold red]{name}[/]"
        cells = [name, escape(row.type), _shape(row.output_shape), _params_cell(row),
                 f"{row.macs:,}" if row.macs else "", formula,
                 f"{row.counted.get('padding_macs', 0):,}" if row.counted.get("padding_macs") else "",
                 escape(_other_ops(row.counted)), _compact(row.bytes) if row.bytes else "",
                 _intensity(row.intensity)]
        if fc:
            if row.flop_counter_macs is None:
                cells.append("[dim]—[/]")
            elif row.flop_counter_macs == row.macs:
                cells.append("[green]=[/]" if row.macs else "[dim]=[/]")
            else:
                cells.append(f"[bold red]{row.flop_counter_macs:,}[/]")
        grid.add_row(*cells)
    t = result.total
    cells = ["total", "", "", f"{t['params']:,}", f"{t['macs']:,}", "", f"{t['padding_macs']:,}", "",
             _compact(t["bytes"]), ""]
    if fc:
        cells.append("" if t.get("flop_counter_macs") is None else f"{t['flop_counter_macs']:,}")
    grid.add_total(*cells)
    return grid


def backward_grid(rows, title: str) -> tuple[Grid, list[str]]:
    """The --backward table (npconv.cost_backward rows, the last one the total) and the
    layers FlopCounterMode disagrees on, "layer (grad_weight 32×)" each."""
    with_fcm = any(r.fcm_forward is not None for r in rows)
    columns = [Col("layer", "name", "left"), Col("type", "text", "left"), Col("forward"), Col("grad_input"),
               Col("grad_weight")]
    if with_fcm:
        columns += [Col("FCM grad_input"), Col("FCM grad_weight"), Col("FCM / counted")]
    grid = Grid(columns, title=title)

    def fmt(v):
        return "—" if v is None else f"{v:,}"

    disagreements = []
    for r in rows:
        cells = [escape(r.layer), escape(r.kind), fmt(r.forward), fmt(r.grad_input), fmt(r.grad_weight)]
        if with_fcm:
            flags = ", ".join(f"{k} {v:.3g}×" for k, v in r.factors.items())
            if flags and r.layer != "(total)":
                disagreements.append(f"{r.layer} ({flags})")
            cells += [fmt(r.fcm_grad_input), fmt(r.fcm_grad_weight), f"[bold red]{flags}[/]" if flags else "="]
        if r.layer == "(total)":
            cells[0] = "total"
            grid.add_total(*cells)
        else:
            grid.add_row(*cells)
    return grid, disagreements
