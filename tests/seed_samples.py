"""Samples copied verbatim from the seed pages, shared by the tests that compare with them."""

# The XML sample of GET /v1/job_runs/1 on BMC's "REST job runs" page (seed 002), verbatim.
BMC_JOB_RUN_XML = """<?xml version="1.0" encoding="UTF-8"?>
<job-run>
<automation-id type="integer">6</automation-id>
<created-at type="datetime">2012-09-04T15:34:44-04:00</created-at>
<finished-at type="datetime">2012-09-04T15:37:18-04:00</finished-at>
<id type="integer">1</id>
<job-type>automation</job-type>
<process-id type="integer">7408</process-id>
<results-path>[...]/Portal/public/automation_results/request/SmartRelease/1003/step_35/output_1346787283.txt</results-path>
<run-key type="integer">1346787283</run-key>
<started-at type="datetime">2012-09-04T15:34:44-04:00</started-at>
<status>Complete</status>
<stderr nil="true"></stderr>
<stdout nil="true"></stdout>
<updated-at type="datetime">2012-09-04T15:37:18-04:00</updated-at>
<step>
<aasm-state>complete</aasm-state>
<id type="integer">35</id>
<name>Test Automation</name>
<request>
<aasm-state>complete</aasm-state>
<id type="integer">3</id>
<name>Request Example</name>
</request>
</step>
</job-run>
"""
