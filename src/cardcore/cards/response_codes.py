"""The ISO 8583 response codes (field 39) cardcore answers card messages with, in one table.

Members are strings, so a code is stored, serialized and compared exactly as its two characters
(`ResponseCode.INSUFFICIENT_FUNDS == "51"`): the stored answers that retransmissions get back
byte for byte do not change. The names are the codes' meanings in the 1987 standard; 81, 86 and
N7 are the schemes' additions for PIN and CVV2 verification.
"""

from enum import StrEnum


class ResponseCode(StrEnum):
    APPROVED = "00"
    DO_NOT_HONOUR = "05"
    INVALID_TRANSACTION = "12"
    LOST_CARD = "41"
    STOLEN_CARD = "43"
    INSUFFICIENT_FUNDS = "51"
    EXPIRED_CARD = "54"
    INCORRECT_PIN = "55"
    NOT_PERMITTED_TO_CARDHOLDER = "57"
    SUSPECTED_FRAUD = "59"
    EXCEEDS_AMOUNT_LIMIT = "61"
    RESTRICTED_CARD = "62"
    EXCEEDS_FREQUENCY_LIMIT = "65"
    PIN_TRIES_EXCEEDED = "75"
    PIN_CRYPTOGRAPHIC_ERROR = "81"
    CANNOT_VERIFY_PIN = "86"
    CVV2_MISMATCH = "N7"
