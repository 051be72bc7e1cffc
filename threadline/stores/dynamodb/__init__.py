"""The Amazon DynamoDB store (``dynamodb://TABLE``).

``_items`` builds keys, items and requests (pure); ``_client`` makes the boto3 client
(timeouts, bounded retries) and turns its errors into threadline's; ``_store`` sends the
requests; ``_record_items`` (pure) and ``_records`` do the same for the records table,
``_session_items`` (pure) and ``_sessions`` for session metadata and listings;
``_schema`` creates and migrates the tables; ``_source`` reads langchain-community's own
DynamoDB table layout for copying.
"""
