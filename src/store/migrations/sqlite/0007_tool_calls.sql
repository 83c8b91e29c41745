-- 0007: the tool calls a model answered with (OpenAI's form, a JSON array),
-- NULL when it asked for none.
ALTER TABLE executions ADD COLUMN tool_calls TEXT;
