// jarvis.test.js — the official Jarvis SDK (@23blocks/block-jarvis 7.0.0),
// unchanged, against a promptd of our own: every method of its prompts,
// prompt comments, executions, execution comments, entities, clusters and
// conversations services, asserting the real values that come back (ids,
// names, counts, the echo model's outputs) and that errors surface as the
// SDK's own (BlockErrorException with the HTTP status).
//
// Run by `make test` (target sdk): npm ci, then node --test in this folder.

import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { createJarvisBlock } from '@23blocks/block-jarvis';
import { createHttpTransport } from '@23blocks/transport-http';
import { BlockErrorException, isUuid } from '@23blocks/contracts';
import { startPromptd, raw } from './support.js';

let server, jarvis, other, userId, otherUserId;

function block(baseUrl, key) {
  const transport = createHttpTransport({ baseUrl, headers: { AppId: key } });
  return createJarvisBlock(transport, { apiKey: key });
}

// The call fails the SDK's way: a BlockErrorException with this HTTP status.
async function rejectsWith(promise, status, what) {
  await assert.rejects(promise, (err) => {
    assert.ok(err instanceof BlockErrorException, `${what}: not a BlockErrorException: ${err}`);
    assert.equal(err.status, status, `${what}: status ${err.status} (${err.message})`);
    return true;
  });
}

function assertId(id, what) {
  assert.ok(isUuid(id), `${what}: ${JSON.stringify(id)} is not a UUID the SDK accepts`);
}

// The whole SSE body of a stream (the SDK hands back a text stream).
async function readAll(stream) {
  let text = '';
  for await (const chunk of stream) text += chunk;
  return text;
}

function recent(date) {
  assert.ok(date instanceof Date && !isNaN(date), `not a date: ${date}`);
  assert.ok(Math.abs(Date.now() - date.getTime()) < 10 * 60 * 1000, `not a real timestamp: ${date.toISOString()}`);
}

before(async () => {
  server = await startPromptd();
  jarvis = block(server.baseUrl, server.adminKey);
  other = block(server.baseUrl, server.otherKey);
  const me = await raw(server, server.adminKey, 'GET', '/api/v1/users/me');
  userId = me.body.data.uuid;
  const them = await raw(server, server.otherKey, 'GET', '/api/v1/users/me');
  otherUserId = them.body.data.uuid;
  assertId(userId, 'admin user');
  assertId(otherUserId, 'other organization user');
});

after(async () => {
  if (server) await server.stop();
});

// state shared along the run
const S = {};
// a hung server fails the test instead of hanging `make test`
const LIMIT = { timeout: 120000 };

test('prompts', LIMIT, async (t) => {
  await t.test('create', async () => {
    const p = await jarvis.prompts.create({
      name: 'Greeter',
      abstract: 'Says hello',
      content: 'Hello {{who}}, from {{place}}',
    });
    assertId(p.id, 'prompt id');
    assert.equal(p.uniqueId, p.id);
    assert.equal(p.name, 'Greeter');
    assert.equal(p.abstract, 'Says hello');
    assert.equal(p.content, 'Hello {{who}}, from {{place}}');
    assert.equal(p.version, 1);
    assert.equal(p.likes, 0);
    assert.equal(p.userUniqueId, userId);
    recent(p.createdAt);
    S.prompt = p;
  });
  await t.test('get', async () => {
    const p = await jarvis.prompts.get(S.prompt.id);
    assert.equal(p.uniqueId, S.prompt.id);
    assert.equal(p.name, 'Greeter');
  });
  await t.test('update (a content change is a new version)', async () => {
    const p = await jarvis.prompts.update(S.prompt.id, { name: 'Greeter 2', content: 'Hi {{who}} at {{place}}' });
    assert.equal(p.uniqueId, S.prompt.id);
    assert.equal(p.name, 'Greeter 2');
    assert.equal(p.content, 'Hi {{who}} at {{place}}');
    assert.equal(p.version, 2);
    assert.equal(p.abstract, 'Says hello');
  });
  await t.test('list (with the page meta the codec reads)', async () => {
    await jarvis.prompts.create({ name: 'Second', content: 'x' });
    const page = await jarvis.prompts.list({ page: 1, perPage: 1 });
    assert.equal(page.data.length, 1);
    assert.deepEqual(page.meta, { currentPage: 1, totalPages: 2, totalCount: 2, perPage: 1 });
    const all = await jarvis.prompts.list();
    assert.equal(all.meta.totalCount, 2);
    assert.deepEqual(all.data.map((p) => p.name).sort(), ['Greeter 2', 'Second']);
  });
  await t.test('render (placeholders)', async () => {
    const r = await jarvis.prompts.render(S.prompt.id, { placeholders: { who: 'Ada' } });
    assert.equal(r.renderedContent, 'Hi Ada at {{place}}');
    assert.equal(r.promptUniqueId, S.prompt.id);
    assert.deepEqual(r.meta.placeholdersProvided, ['who']);
    assert.deepEqual(r.meta.placeholdersMissing, ['place']);
    assert.deepEqual(r.meta.allPlaceholders, ['who', 'place']);
  });
  await t.test('execute (echo model)', async () => {
    const r = await jarvis.prompts.execute(S.prompt.id, { variables: { who: 'Ada', place: 'London' } });
    assert.match(r.output, /Hi Ada at London/);
    assertId(r.executionUniqueId, 'execution id');
    assert.ok(r.tokens > 0, `tokens ${r.tokens}`);
    assert.equal(typeof r.duration, 'number');
    S.executionId = r.executionUniqueId;
  });
  await t.test('executeStream', async () => {
    const stream = await jarvis.prompts.executeStream(S.prompt.id, { variables: { who: 'Bo', place: 'Oslo' } });
    const text = await readAll(stream);
    const pieces = [...text.matchAll(/^data: (\{"content".*\})$/gm)].map((m) => JSON.parse(m[1]).content);
    assert.match(pieces.join(''), /Hi Bo at Oslo/);
    assert.match(text, /event: done/);
  });
  await t.test('publish (a version)', async () => {
    const versions = await raw(server, server.adminKey, 'GET', `/prompts/${S.prompt.id}/versions`);
    assert.equal(versions.status, 200);
    S.versions = versions.body.data.map((v) => ({ id: v.id, number: v.attributes.version_number }));
    const first = S.versions.find((v) => v.number === 1);
    assertId(first.id, 'version id');
    const p = await jarvis.prompts.publish(S.prompt.id, first.id);
    assert.equal(p.uniqueId, S.prompt.id);
    S.firstVersion = first.id;
  });
  await t.test('executeVersionStream (runs that version)', async () => {
    const stream = await jarvis.prompts.executeVersionStream(S.prompt.id, S.firstVersion, {
      variables: { who: 'Cy', place: 'Rome' },
    });
    const text = await readAll(stream);
    const pieces = [...text.matchAll(/^data: (\{"content".*\})$/gm)].map((m) => JSON.parse(m[1]).content);
    assert.match(pieces.join(''), /Hello Cy, from Rome/);
  });
  await t.test('errors are the SDK\'s errors', async () => {
    await rejectsWith(jarvis.prompts.get('00000000-0000-4000-8000-000000000000'), 404, 'missing prompt');
    await rejectsWith(jarvis.prompts.create({ name: 'no content' }), 422, 'missing content');
    await rejectsWith(other.prompts.get(S.prompt.id), 404, "another organization's prompt");
    await rejectsWith(
      jarvis.prompts.execute(S.prompt.id, { variables: { who: 'only one' } }),
      422,
      'missing template variable',
    );
    await assert.rejects(jarvis.prompts.get('not-a-uuid'), TypeError);
  });
  await t.test('delete', async () => {
    const extra = await jarvis.prompts.create({ name: 'Doomed', content: 'bye' });
    await jarvis.prompts.delete(extra.id);
    await rejectsWith(jarvis.prompts.get(extra.id), 404, 'deleted prompt');
  });
});

test('executions', LIMIT, async (t) => {
  await t.test('get', async () => {
    const e = await jarvis.executions.get(S.executionId);
    assert.equal(e.uniqueId, S.executionId);
    assert.equal(e.promptUniqueId, S.prompt.id);
    assert.equal(e.status, 'completed');
    assert.match(e.input, /Hi Ada at London/);
    assert.match(e.output, /Hi Ada at London/);
    assert.ok(e.tokens > 0);
    assert.equal(typeof e.duration, 'number');
    recent(e.createdAt);
    recent(e.completedAt);
  });
  await t.test('list', async () => {
    const page = await jarvis.executions.list({ perPage: 2 });
    assert.equal(page.meta.totalCount, 3);
    assert.equal(page.meta.perPage, 2);
    assert.equal(page.meta.totalPages, 2);
    assert.equal(page.data.length, 2);
    const completed = await jarvis.executions.list({ status: 'completed' });
    assert.equal(completed.meta.totalCount, 3);
  });
  await t.test('listByPrompt and getByPrompt', async () => {
    const page = await jarvis.executions.listByPrompt(S.prompt.id);
    assert.equal(page.meta.totalCount, 3);
    assert.ok(page.data.every((e) => e.promptUniqueId === S.prompt.id));
    const e = await jarvis.executions.getByPrompt(S.prompt.id, S.executionId);
    assert.equal(e.uniqueId, S.executionId);
  });
  await t.test('listByPromptVersion', async () => {
    const page = await jarvis.executions.listByPromptVersion(S.prompt.id, S.firstVersion);
    assert.equal(page.meta.totalCount, 1, 'only the run of version 1');
    assert.match(page.data[0].output, /Hello Cy, from Rome/);
  });
  await t.test('cancel (a synchronous run has ended: 409)', async () => {
    await rejectsWith(jarvis.executions.cancel(S.executionId), 409, 'cancel a finished execution');
    await rejectsWith(other.executions.cancel(S.executionId), 404, "another organization's execution");
  });
  await t.test('cancel (an async run in flight)', async () => {
    // "openai" is a local socket that never answers (support.js): the run stays in flight
    const sub = await raw(server, server.adminKey, 'POST', '/api/v1/prompt', {
      prompt: 'cancel me',
      model: 'openai/never-answers',
      async: true,
    });
    assert.equal(sub.status, 202, JSON.stringify(sub.body));
    const id = sub.body.request_id;
    assertId(id, 'async request id');
    const e = await jarvis.executions.cancel(id);
    assert.equal(e.uniqueId, id);
    assert.equal(e.status, 'cancelled');
    assert.equal((await jarvis.executions.get(id)).status, 'cancelled');
    await rejectsWith(jarvis.executions.cancel(id), 409, 'cancel twice');
  });
  await t.test('listByAgent: promptd has no agents (the SDK\'s error)', async () => {
    await rejectsWith(jarvis.executions.listByAgent(S.prompt.id), 404, 'agents');
  });
  await t.test('errors', async () => {
    await rejectsWith(other.executions.get(S.executionId), 404, "another organization's execution");
    await rejectsWith(jarvis.executions.list({ status: 'bogus' }), 400, 'bad status filter');
  });
});

test('execution comments', LIMIT, async (t) => {
  const svc = () => jarvis.executionComments;
  await t.test('create (content)', async () => {
    const c = await svc().create(S.prompt.id, S.executionId, { content: 'Nice output' });
    assertId(c.id, 'comment id');
    assert.equal(c.content, 'Nice output');
    assert.equal(c.executionUniqueId, S.executionId);
    assert.equal(c.promptUniqueId, S.prompt.id);
    assert.equal(c.userUniqueId, userId);
    recent(c.createdAt);
    S.execComment = c;
  });
  await t.test('get, update', async () => {
    const c = await svc().get(S.prompt.id, S.executionId, S.execComment.id);
    assert.equal(c.content, 'Nice output');
    const u = await svc().update(S.prompt.id, S.executionId, S.execComment.id, { content: 'Very nice output' });
    assert.equal(u.content, 'Very nice output');
  });
  await t.test('reply, and list (all, and one thread)', async () => {
    const r = await svc().reply(S.prompt.id, S.executionId, S.execComment.id, { content: 'Agreed' });
    assert.equal(r.parentUniqueId, S.execComment.id);
    const all = await svc().list(S.prompt.id, S.executionId);
    assert.equal(all.meta.totalCount, 2);
    const thread = await svc().list(S.prompt.id, S.executionId, { parentUniqueId: S.execComment.id });
    assert.equal(thread.meta.totalCount, 1);
    assert.equal(thread.data[0].content, 'Agreed');
    const parent = await svc().get(S.prompt.id, S.executionId, S.execComment.id);
    assert.equal(parent.repliesCount, 1);
    const e = await jarvis.executions.get(S.executionId);
    assert.equal(e.uniqueId, S.executionId);
    const rawExec = await raw(server, server.adminKey, 'GET', `/executions/${S.executionId}`);
    assert.equal(rawExec.body.data.attributes.comments_count, 2);
  });
  await t.test('like, dislike, follow, unfollow, save, unsave', async () => {
    const id = S.execComment.id;
    const get = () => svc().get(S.prompt.id, S.executionId, id);
    await svc().like(S.prompt.id, S.executionId, id);
    await svc().like(S.prompt.id, S.executionId, id); // idempotent
    assert.equal((await get()).likesCount, 1);
    await svc().dislike(S.prompt.id, S.executionId, id);
    assert.equal((await get()).likesCount, 0);
    await svc().follow(S.prompt.id, S.executionId, id);
    await svc().save(S.prompt.id, S.executionId, id);
    const raw1 = await raw(server, server.adminKey, 'GET', `/prompts/${S.prompt.id}/executions/${S.executionId}/comments/${id}`);
    assert.equal(raw1.body.data.attributes.followers_count, 1);
    assert.equal(raw1.body.data.attributes.saves_count, 1);
    await svc().unfollow(S.prompt.id, S.executionId, id);
    await svc().unsave(S.prompt.id, S.executionId, id);
    const raw2 = await raw(server, server.adminKey, 'GET', `/prompts/${S.prompt.id}/executions/${S.executionId}/comments/${id}`);
    assert.equal(raw2.body.data.attributes.followers_count, 0);
    assert.equal(raw2.body.data.attributes.saves_count, 0);
  });
  await t.test('errors', async () => {
    await rejectsWith(svc().create(S.prompt.id, S.executionId, {}), 422, 'no content');
    await rejectsWith(other.executionComments.get(S.prompt.id, S.executionId, S.execComment.id), 404, 'other org');
    await rejectsWith(other.executionComments.like(S.prompt.id, S.executionId, S.execComment.id), 404, 'other org');
  });
  await t.test('delete (its replies go with it)', async () => {
    await svc().delete(S.prompt.id, S.executionId, S.execComment.id);
    const all = await svc().list(S.prompt.id, S.executionId);
    assert.equal(all.meta.totalCount, 0);
    await rejectsWith(svc().get(S.prompt.id, S.executionId, S.execComment.id), 404, 'deleted comment');
  });
});

test('prompt comments', LIMIT, async (t) => {
  const svc = () => jarvis.promptComments;
  await t.test('create, get, update', async () => {
    const c = await svc().create(S.prompt.id, { content: 'Good prompt' });
    assertId(c.id, 'comment id');
    assert.equal(c.content, 'Good prompt');
    assert.equal(c.promptUniqueId, S.prompt.id);
    assert.equal(c.userUniqueId, userId);
    S.promptComment = c;
    const g = await svc().get(S.prompt.id, c.id);
    assert.equal(g.content, 'Good prompt');
    const u = await svc().update(S.prompt.id, c.id, { content: 'Great prompt' });
    assert.equal(u.content, 'Great prompt');
  });
  await t.test('reply and list', async () => {
    const r = await svc().reply(S.prompt.id, S.promptComment.id, { content: 'Thanks' });
    assert.equal(r.parentUniqueId, S.promptComment.id);
    const all = await svc().list(S.prompt.id);
    assert.equal(all.meta.totalCount, 2);
    assert.deepEqual(all.data.map((c) => c.content), ['Great prompt', 'Thanks']);
    const thread = await svc().list(S.prompt.id, { parentUniqueId: S.promptComment.id });
    assert.equal(thread.meta.totalCount, 1);
    assert.equal((await svc().get(S.prompt.id, S.promptComment.id)).repliesCount, 1);
  });
  await t.test('like, dislike, follow, unfollow, save, unsave', async () => {
    const id = S.promptComment.id;
    await svc().like(S.prompt.id, id);
    assert.equal((await svc().get(S.prompt.id, id)).likesCount, 1);
    await svc().dislike(S.prompt.id, id);
    assert.equal((await svc().get(S.prompt.id, id)).likesCount, 0);
    await svc().follow(S.prompt.id, id);
    await svc().save(S.prompt.id, id);
    let a = (await raw(server, server.adminKey, 'GET', `/prompts/${S.prompt.id}/comments/${id}`)).body.data.attributes;
    assert.equal(a.followers_count, 1);
    assert.equal(a.saves_count, 1);
    await svc().unfollow(S.prompt.id, id);
    await svc().unsave(S.prompt.id, id);
    a = (await raw(server, server.adminKey, 'GET', `/prompts/${S.prompt.id}/comments/${id}`)).body.data.attributes;
    assert.equal(a.followers_count, 0);
    assert.equal(a.saves_count, 0);
  });
  await t.test('errors', async () => {
    await rejectsWith(svc().create(S.prompt.id, {}), 422, 'no content');
    await rejectsWith(other.promptComments.list(S.prompt.id), 404, 'other org');
    await rejectsWith(other.promptComments.update(S.prompt.id, S.promptComment.id, { content: 'x' }), 404, 'other org');
  });
  await t.test('delete', async () => {
    await svc().delete(S.prompt.id, S.promptComment.id);
    assert.equal((await svc().list(S.prompt.id)).meta.totalCount, 0);
  });
});

test('entities', LIMIT, async (t) => {
  await t.test('register (a new id, then the same id again)', async () => {
    const id = '7d0c7f5e-3a1b-4c2d-9e8f-0a1b2c3d4e5f';
    const e = await jarvis.entities.register(id, { entityAlias: 'Ada', instructions: 'You are Ada.' });
    assert.equal(e.uniqueId, id);
    assert.equal(e.entityAlias, 'Ada');
    assert.equal(e.instructions, 'You are Ada.');
    recent(e.createdAt);
    const again = await jarvis.entities.register(id, { content: 'mathematician' });
    assert.equal(again.entityAlias, 'Ada');
    assert.equal(again.content, 'mathematician');
    S.entity = again;
  });
  await t.test('get, list, update', async () => {
    const e = await jarvis.entities.get(S.entity.id);
    assert.equal(e.entityAlias, 'Ada');
    const page = await jarvis.entities.list();
    assert.equal(page.meta.totalCount, 1);
    assert.equal(page.data[0].uniqueId, S.entity.id);
    const u = await jarvis.entities.update(S.entity.id, { instructions: 'You are Ada Lovelace.' });
    assert.equal(u.instructions, 'You are Ada Lovelace.');
  });
  await t.test('errors', async () => {
    await rejectsWith(jarvis.entities.register('0b0c7f5e-3a1b-4c2d-9e8f-0a1b2c3d4e5f', {}), 422, 'no name');
    await rejectsWith(other.entities.register(S.entity.id, { entityAlias: 'Mine' }), 404, "another org's id");
    await rejectsWith(other.entities.get(S.entity.id), 404, "another org's entity");
  });
  await t.test('addPrompt, createContext, sendMessage, sendMessageStream: not in promptd (the SDK\'s error)', async () => {
    await rejectsWith(jarvis.entities.addPrompt(S.entity.id, S.prompt.id), 404, 'entity prompts');
    await rejectsWith(jarvis.entities.createContext(S.entity.id, { name: 'x' }), 404, 'entity contexts');
    const ctx = '1b0c7f5e-3a1b-4c2d-9e8f-0a1b2c3d4e5f';
    await rejectsWith(jarvis.entities.sendMessage(S.entity.id, ctx, { content: 'hi' }), 404, 'entity messages');
    await rejectsWith(jarvis.entities.sendMessageStream(S.entity.id, ctx, { content: 'hi' }), 404, 'entity stream');
  });
});

test('clusters (per user)', LIMIT, async (t) => {
  await t.test('create, get, list', async () => {
    const c = await jarvis.clusters.create(userId, { name: 'Team', description: 'the twins' });
    assertId(c.id, 'cluster id');
    assert.equal(c.name, 'Team');
    assert.equal(c.description, 'the twins');
    assert.equal(c.userUniqueId, userId);
    recent(c.createdAt);
    S.cluster = c;
    const g = await jarvis.clusters.get(userId, c.id);
    assert.equal(g.name, 'Team');
    const page = await jarvis.clusters.list(userId);
    assert.equal(page.meta.totalCount, 1);
    assert.equal(page.data[0].uniqueId, c.id);
  });
  await t.test('update', async () => {
    const u = await jarvis.clusters.update(userId, S.cluster.id, { name: 'Team A' });
    assert.equal(u.name, 'Team A');
    assert.equal(u.description, 'the twins');
  });
  await t.test('addPrompt', async () => {
    const c = await jarvis.clusters.addPrompt(userId, S.cluster.id, S.prompt.id);
    assert.equal(c.uniqueId, S.cluster.id);
    const prompts = await raw(server, server.adminKey, 'GET', `/clusters/${S.cluster.id}/prompts`);
    assert.deepEqual(prompts.body.data.map((p) => p.id), [S.prompt.id]);
  });
  await t.test('createContext and sendMessage (the members answer)', async () => {
    const member = await raw(server, server.adminKey, 'POST', `/clusters/${S.cluster.id}/members/${S.entity.id}`);
    assert.equal(member.status, 200);
    const ctx = await jarvis.clusters.createContext(userId, S.cluster.id, { name: 'Planning' });
    assertId(ctx.data.id, 'context id');
    assert.equal(ctx.data.attributes.name, 'Planning');
    const sent = await jarvis.clusters.sendMessage(userId, S.cluster.id, ctx.data.id, {
      role: 'user',
      content: 'What next?',
    });
    assert.equal(sent.message.content, 'What next?');
    assert.equal(sent.included.length, 1, 'one reply per member');
    assert.match(sent.response.content, /What next\?/, 'the echo model answers with the prompt');
    assert.equal(sent.response.entity_id, S.entity.id);
    assertId(sent.execution_unique_id, 'reply execution');
    S.contextId = ctx.data.id;
  });
  await t.test('errors', async () => {
    await rejectsWith(jarvis.clusters.create(userId, {}), 422, 'no name');
    await rejectsWith(jarvis.clusters.list(otherUserId), 404, "another org's user");
    await rejectsWith(other.clusters.get(otherUserId, S.cluster.id), 404, "another org's cluster");
    await rejectsWith(other.clusters.addPrompt(otherUserId, S.cluster.id, S.prompt.id), 404, "another org's cluster");
    const mine = await other.clusters.create(otherUserId, { name: 'B' });
    await rejectsWith(other.clusters.addPrompt(otherUserId, mine.id, S.prompt.id), 404, "another org's prompt");
    await other.clusters.delete(otherUserId, mine.id);
  });
  await t.test('delete', async () => {
    const c = await jarvis.clusters.create(userId, { name: 'Short-lived' });
    await jarvis.clusters.delete(userId, c.id);
    await rejectsWith(jarvis.clusters.get(userId, c.id), 404, 'deleted cluster');
  });
});

test('conversations', LIMIT, async (t) => {
  await t.test('create (agent = the cluster whose members answer), get', async () => {
    const c = await jarvis.conversations.create({ agentUniqueId: S.cluster.id, name: 'Standup' });
    assertId(c.id, 'conversation id');
    assert.equal(c.name, 'Standup');
    assert.equal(c.agentUniqueId, S.cluster.id);
    assert.equal(c.userUniqueId, userId);
    assert.equal(c.status, 'active');
    recent(c.createdAt);
    S.conversation = c;
    const g = await jarvis.conversations.get(c.id);
    assert.equal(g.name, 'Standup');
  });
  await t.test('sendMessage', async () => {
    const r = await jarvis.conversations.sendMessage(S.conversation.id, { message: 'Status?', role: 'user' });
    assert.equal(r.message.role, 'user');
    assert.equal(r.message.content, 'Status?');
    assert.equal(r.response.role, 'assistant');
    assert.match(r.response.content, /Status\?/);
    assertId(r.executionUniqueId, 'execution of the reply');
    assert.ok(r.tokens > 0, `tokens ${r.tokens}`);
  });
  await t.test('list, listByUser', async () => {
    const all = await jarvis.conversations.list();
    assert.equal(all.meta.totalCount, 2, 'the SDK context and this one');
    const byCluster = await jarvis.conversations.list({ agentUniqueId: S.cluster.id, perPage: 1 });
    assert.equal(byCluster.meta.totalCount, 2);
    assert.equal(byCluster.meta.totalPages, 2);
    assert.equal(byCluster.data[0].name, 'Standup', 'newest first');
    const mine = await jarvis.conversations.listByUser(userId);
    assert.equal(mine.meta.totalCount, 2);
  });
  await t.test('rename, archive, restore, clear', async () => {
    const r = await jarvis.conversations.rename(S.conversation.id, 'Daily standup');
    assert.equal(r.name, 'Daily standup');
    const a = await jarvis.conversations.archive(S.conversation.id);
    assert.equal(a.status, 'archived');
    await rejectsWith(jarvis.conversations.sendMessage(S.conversation.id, { message: 'late' }), 409, 'archived');
    const b = await jarvis.conversations.restore(S.conversation.id);
    assert.equal(b.status, 'active');
    const before = await raw(server, server.adminKey, 'GET', `/conversations/${S.conversation.id}/messages`);
    assert.equal(before.body.meta.totalRecords, 2);
    const c = await jarvis.conversations.clear(S.conversation.id);
    assert.equal(c.uniqueId, S.conversation.id);
    const afterClear = await raw(server, server.adminKey, 'GET', `/conversations/${S.conversation.id}/messages`);
    assert.equal(afterClear.body.meta.totalRecords, 0);
  });
  await t.test('errors', async () => {
    await rejectsWith(jarvis.conversations.create({ name: 'no cluster' }), 422, 'no agent');
    await rejectsWith(jarvis.conversations.rename(S.conversation.id, ''), 422, 'empty name');
    await rejectsWith(other.conversations.get(S.conversation.id), 404, "another org's conversation");
    await rejectsWith(other.conversations.create({ agentUniqueId: S.cluster.id, name: 'x' }), 404, "another org's cluster");
    await rejectsWith(other.conversations.listByUser(userId), 404, "another org's user");
    await rejectsWith(other.conversations.clear(S.conversation.id), 404, "another org's conversation");
    const list = await other.conversations.list();
    assert.equal(list.meta.totalCount, 0, 'nothing of ours in their list');
  });
});
