"""The ECDI codec: bytes <-> XML trees for SOAP calls, message texts and signatures.

Shared by the mock gateway and the reference DTS. It holds no policy: which checks apply, in
which order and with which result code is decided by the gateway's pipeline or the DTS, using the
profile. Keeping the codec policy-free is what lets both sides share it without the gateway and the
DTS "agreeing by construction" on behaviour the cases must test.
"""
