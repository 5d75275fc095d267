"""What one tenant's analysis run did: small, flat, safe to return from a task and show as a table."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any, Final, Literal

from audiapro.analysis.models import AnalysisRecord, SkipReason

#: Rounding of money in summaries (a thousandth of a cent).
USD_DECIMALS: Final = 5
#: Summary columns, in table order; skips get one column per `SkipReason`.
SKIP_COLUMNS: Final = tuple(f"skipped_{reason.value}" for reason in SkipReason)
SUMMARY_COLUMNS: Final = (
    "tenant",
    "status",
    "mode",
    "considered",
    "analyzed",
    "failed",
    "skipped",
    *SKIP_COLUMNS,
    "queued_for_batch",
    "batch_submitted",
    "batch_collected",
    "batches_open",
    "deferred",
    "cost_usd",
    "spent_today_usd",
    "budget_usd",
    "seconds",
    "error",
)

OutcomeKind = Literal["succeeded", "failed", "skipped", "queued", "unchanged"]


@dataclass(frozen=True)
class CallOutcome:
    """What happened to one call.

    Attributes:
        kind: Final record status, `queued` (transcribed, waits for a batch) or `unchanged` (the
            recording was analysed before).
        skip_reason: For skips.
        spent_usd: What this run paid for the call.
    """

    kind: OutcomeKind
    skip_reason: SkipReason | None = None
    spent_usd: float = 0.0

    @classmethod
    def of(cls, record: AnalysisRecord, *, already_paid_usd: float = 0.0) -> CallOutcome:
        """The outcome of a stored record; `already_paid_usd` was paid by an earlier step or run."""
        return cls(record.status, record.skip_reason, max(0.0, record.cost_usd - already_paid_usd))


@dataclass
class RunSummary:
    """Counts and money of one tenant's run.

    Attributes:
        tenant: Tenant.
        mode: `openai` or `offline`.
        status: `ok`, `busy`, `disabled` or `failed`.
        considered: Calls evaluated (needing analysis, plus resumed transcripts).
        analyzed: Records that succeeded.
        failed: Records that failed (malformed answers after retries, rejected audio).
        skipped: Skips by reason.
        queued_for_batch: Calls transcribed and waiting for a Batch API submission.
        batch_submitted: Requests submitted to the Batch API by this run.
        batch_collected: Records collected from finished batches.
        batches_open: Batches still running after this run.
        unchanged: Calls re-downloaded whose recording was analysed before (nothing paid).
        deferred: Eligible calls left for a later run (`max_calls`).
        cost_usd: What this run spent.
        spent_today_usd: What the tenant spent today after this run.
        budget_usd: The tenant's daily cap (None offline).
        seconds: Wall time.
        error: Why the run failed.
    """

    tenant: str
    mode: str
    status: str = "ok"
    considered: int = 0
    analyzed: int = 0
    failed: int = 0
    skipped: Counter[str] = field(default_factory=Counter)
    queued_for_batch: int = 0
    batch_submitted: int = 0
    batch_collected: int = 0
    batches_open: int = 0
    unchanged: int = 0
    deferred: int = 0
    cost_usd: float = 0.0
    spent_today_usd: float = 0.0
    budget_usd: float | None = None
    seconds: float = 0.0
    error: str = ""

    def add(self, outcome: CallOutcome) -> None:
        """Count one call's outcome."""
        self.cost_usd += outcome.spent_usd
        if outcome.kind == "succeeded":
            self.analyzed += 1
        elif outcome.kind == "failed":
            self.failed += 1
        elif outcome.kind == "skipped" and outcome.skip_reason is not None:
            self.skipped[outcome.skip_reason.value] += 1
        elif outcome.kind == "queued":
            self.queued_for_batch += 1
        elif outcome.kind == "unchanged":
            self.unchanged += 1

    def as_row(self) -> dict[str, Any]:
        """A flat row with `SUMMARY_COLUMNS` (money rounded)."""
        row: dict[str, Any] = {
            "tenant": self.tenant,
            "status": self.status,
            "mode": self.mode,
            "considered": self.considered,
            "analyzed": self.analyzed,
            "failed": self.failed,
            "skipped": sum(self.skipped.values()),
            **{f"skipped_{reason.value}": self.skipped.get(reason.value, 0) for reason in SkipReason},
            "queued_for_batch": self.queued_for_batch,
            "batch_submitted": self.batch_submitted,
            "batch_collected": self.batch_collected,
            "batches_open": self.batches_open,
            "deferred": self.deferred,
            "cost_usd": round(self.cost_usd, USD_DECIMALS),
            "spent_today_usd": round(self.spent_today_usd, USD_DECIMALS),
            "budget_usd": self.budget_usd,
            "seconds": round(self.seconds, 3),
            "error": self.error,
        }
        return {column: row[column] for column in SUMMARY_COLUMNS}
