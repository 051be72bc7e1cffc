// OpenAI's JavaScript SDK as a client of threadline serve: continues a conversation
// (started elsewhere: the test writes it as the terminal would), streams a response,
// and prints what it saw as one JSON line for tests/server/test_js_sdk.py.
import OpenAI from "openai";

const [baseURL, conversationId] = process.argv.slice(2);
const client = new OpenAI({ baseURL: `${baseURL}/v1`, apiKey: "local", maxRetries: 0 });

const created = await client.conversations.create({ metadata: { from: "js" } });
await client.conversations.items.create(created.id, {
  items: [{ type: "message", role: "user", content: "hello from node" }],
});
const answer = await client.responses.create({
  model: "echo", input: "and now from TypeScript", conversation: conversationId,
});
const deltas = [];
const stream = await client.responses.create({
  model: "echo", input: "streamed words please", conversation: conversationId, stream: true,
});
const types = [];
for await (const event of stream) {
  types.push(event.type);
  if (event.type === "response.output_text.delta") deltas.push(event.delta);
}
const items = [];
for await (const item of client.conversations.items.list(conversationId, { order: "asc", limit: 2 })) {
  items.push(item.content.map((part) => part.text).join(""));
}
let missing = null;
try {
  await client.conversations.retrieve("conv_does_not_exist");
} catch (error) {
  missing = { status: error.status, type: error.error?.type ?? error.type };
}
console.log(JSON.stringify({
  created: created.id, metadata: created.metadata, answer: answer.output_text,
  streamed: deltas.join(""), types, items, missing,
}));
