"""The harness playing the DTS against a gateway under test (issue 16, ``party.CgwParty``): its client,
its evidence, its session and the case context of CGW cases. Never imports the mock gateway's pipeline."""
