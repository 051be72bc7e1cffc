"""The Amazon DynamoDB store (``dynamodb://TABLE``).

``_items`` builds keys, items and requests (pure); ``_store`` sends them with boto3;
``_source`` reads langchain-community's own DynamoDB table layout for copying.
"""
