"""Values the API documentation's examples share, so one story runs through them: Ada, a client, is funded by
an admin, generates on `dr14`, and holds an API key for an essay-grading TypeID. Each Struct declares its own
example (an `example` ClassVar, as it goes over the wire) beside its fields; the OpenAPI document shows it."""

import base64

from domain.hmac_signature import SignedLogin

USER_ID = "aa203ceb-af7c-42ce-8890-0d26b97b66b7"
USERNAME = "ada"
PASSWORD = "correct horse battery staple"
GENERATION_ID = "fd009f99-f5b4-42a1-9e70-61e0d6e949a1"
TRANSACTION_ID = "2686e04d-04ad-457f-a1ec-d2a6920d64cf"
REFERENCE_ID = "859f3c4e-6b20-46e8-826a-6ac4a96043a1"
COMPARISON_ID = "9efad1d7-7e49-4cb6-8a79-294bcb6110c4"
TYPEID = "tid_afjh2btjfoovxm7i"
API_KEY = "ak_uXG7YLrpa6hzr1tIZCYWDEEC"
SECRET_KEY = "sk_C5A5yKy6F7rX0SCVvmxbxWL8z2CkxGFnNHjfZSIRmiY"
ACCESS_TOKEN = (
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9.eyJzdWIiOiJhYTIwM2NlYi1hZjdjLTQyY2UtODg5MC0wZDI2Yjk3YjY2YjciLCJyb2xlIjoiY2xp"
    "ZW50IiwiaWF0IjoxNzY3MjI1NjAwLCJleHAiOjE3NjcyMjY1MDAsImp0aSI6IllwM2tRMm04VDF2WDlyTHc0blpjNkEifQ.sE87PmCKOzeAHDOM"
    "iI6nICG8L_cq5ig4B-bTD-y5cc4"
)
REFRESH_TOKEN = "P1o0WprldSlK5PYtWglEMasSEaXlyrR6QiONKK1n1_A"
CREATED_AT = "2026-01-01T09:30:00Z"
FINISHED_AT = "2026-01-01T09:30:02Z"
EXPIRES_AT = "2030-01-01T00:00:00Z"

LOGIN = SignedLogin(api_key=API_KEY, username=USERNAME, timestamp=1767259800, nonce="n7Kq2Vx9LmP4sT8wYb3Rz6")
SIGNATURE = LOGIN.sign(SECRET_KEY)


def _base64(sentence: str) -> str:
    return base64.b64encode(sentence.encode()).decode()


REFERENCE_SENTENCE = "The Eiffel Tower was completed in 1889 and is about 330 metres tall."
REFERENCE_TEXT = _base64(REFERENCE_SENTENCE)
COMPARED_TEXT = _base64("Finished in 1889, the Eiffel Tower rises roughly 330 metres above Paris.")
