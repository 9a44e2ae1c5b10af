"""Response generator that fills the clinic's own facts into every response.

Configured in the endpoints file as ``nlg: {type: bot.nlg.ClinicNLG}``. It runs
inside the Rasa server, so the placeholders ({clinic_phone}, {booking_url}, ...)
are filled even when the action server is unreachable.
"""

from __future__ import annotations

import logging
from typing import Any, Dict, Optional, Text

from rasa.core.nlg import TemplatedNaturalLanguageGenerator
from rasa.shared.core.domain import Domain
from rasa.utils.endpoints import EndpointConfig

from bot.clinic import Clinic, load_clinic
from bot.settings import Settings

logger = logging.getLogger(__name__)


class ClinicNLG(TemplatedNaturalLanguageGenerator):
    """Templated responses with the clinic configuration as template variables."""

    def __init__(
        self,
        endpoint_config: Optional[EndpointConfig] = None,
        domain: Optional[Domain] = None,
        clinic: Optional[Clinic] = None,
    ) -> None:
        """Load the clinic configuration named in the endpoint or the environment."""
        domain = domain or Domain.empty()
        super().__init__(domain.responses)
        if clinic is None:
            path = (endpoint_config.kwargs.get("clinic_config") if endpoint_config else None) or str(
                Settings.from_env().clinic_config
            )
            from pathlib import Path

            clinic = load_clinic(Path(path))
        self.clinic = clinic
        self._clinic_values = clinic.template_values()

    def _response_variables(  # type: ignore[override]
        self, filled_slots: Optional[Dict[Text, Any]], kwargs: Dict[Text, Any]
    ) -> Dict[Text, Any]:
        """Clinic facts, then slot values, then the caller's keyword arguments."""
        variables: Dict[Text, Any] = dict(self._clinic_values)
        variables.update({k: v for k, v in (filled_slots or {}).items() if v is not None})
        variables.update(kwargs)
        return variables
