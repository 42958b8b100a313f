"""The `[web]` section of the machine config."""

from __future__ import annotations

from typing import Annotated

from pydantic import BaseModel, ConfigDict, Field


class WebSection(BaseModel):
    """Console settings. Without `technician_token` the technician page stays locked."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    #: Token or PIN for the technician page and endpoints (≥ 4 characters); unset = locked.
    technician_token: Annotated[str | None, Field(min_length=4, max_length=128)] = None
    #: How often live numbers are pushed to each browser (the brief asks for ≥ 5 Hz).
    push_hz: Annotated[float, Field(ge=5.0, le=50.0)] = 10.0
