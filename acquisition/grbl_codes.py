"""What GRBL 1.1's numbered replies mean (from the GRBL 1.1 interface documentation).

Every line sent to GRBL is answered ``ok`` or ``error:N``; ``ALARM:N`` arrives unasked when the
machine stops itself. The driver puts these meanings into its error messages.
"""
from __future__ import annotations

ERRORS: dict[int, str] = {
    1: "G-code words consist of a letter and a value; letter was not found",
    2: "numeric value format is not valid or missing an expected value",
    3: "Grbl '$' system command was not recognized or supported",
    4: "negative value received for an expected positive value",
    5: "homing cycle is not enabled via settings ($22)",
    6: "minimum step pulse time must be greater than 3 microseconds",
    7: "EEPROM read failed; reset and restored to default values",
    8: "Grbl '$' command cannot be used unless Grbl is IDLE",
    9: "G-code locked out during alarm or jog state",
    10: "soft limits cannot be enabled without homing also enabled",
    11: "max characters per line exceeded; line was not processed",
    12: "Grbl '$' setting value exceeds the maximum step rate supported",
    13: "safety door detected as opened and door state initiated",
    14: "build info or startup line exceeded EEPROM line length limit",
    15: "jog target exceeds machine travel; command ignored",
    16: "jog command with no '=' or contains prohibited g-code",
    17: "laser mode requires PWM output",
    20: "unsupported or invalid g-code command found in block",
    21: "more than one g-code command from same modal group found in block",
    22: "feed rate has not yet been set or is undefined",
    23: "g-code command in block requires an integer value",
    24: "two g-code commands that both require the use of the XYZ axis words were detected in the block",
    25: "a g-code word was repeated in the block",
    26: "a g-code command implicitly or explicitly requires XYZ axis words in the block, but none were detected",
    27: "N line number value is not within the valid range of 1 - 9,999,999",
    28: "a g-code command was sent, but is missing some required P or L value words in the line",
    29: "Grbl supports six work coordinate systems G54-G59; G59.1, G59.2, and G59.3 are not supported",
    30: "the G53 g-code command requires either a G0 seek or G1 feed motion mode to be active",
    31: "there are unused axis words in the block and G80 motion mode cancel is active",
    32: "a G2 or G3 arc was commanded but there are no XYZ axis words in the selected plane",
    33: "the motion command has an invalid target",
    34: "a G2 or G3 arc, traced with the radius definition, had a mathematical error",
    35: "a G2 or G3 arc, traced with the offset definition, is missing the IJK offset word",
    36: "there are unused, leftover g-code words that aren't used by any command in the block",
    37: "the G43.1 dynamic tool length offset command cannot apply an offset to an axis other than its configured axis",
    38: "tool number greater than max supported value",
}

ALARMS: dict[int, str] = {
    1: "hard limit triggered; machine position is likely lost, re-homing is highly recommended",
    2: "soft limit alarm: G-code motion target exceeds machine travel",
    3: "reset while in motion; machine position is likely lost, re-homing is highly recommended",
    4: "probe fail: the probe is not in the expected initial state",
    5: "probe fail: the probe did not contact the workpiece",
    6: "homing fail: reset during active homing cycle",
    7: "homing fail: safety door was opened during active homing cycle",
    8: "homing fail: cycle failed to clear limit switch when pulling off",
    9: "homing fail: could not find limit switch within search distance",
}


def error_meaning(code: int) -> str:
    """The text of ``error:code``.

    Examples
    --------
    >>> error_meaning(9)
    'G-code locked out during alarm or jog state'
    >>> error_meaning(99)
    'unknown error code'
    """
    return ERRORS.get(int(code), "unknown error code")


def alarm_meaning(code: int) -> str:
    """The text of ``ALARM:code``.

    Examples
    --------
    >>> alarm_meaning(2)
    'soft limit alarm: G-code motion target exceeds machine travel'
    """
    return ALARMS.get(int(code), "unknown alarm code")
