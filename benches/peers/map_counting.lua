-- map_counting: frequency counting in hash maps with string and integer keys.
local function main()
  local n = 16000000
  local vocab = {}
  for i = 0, 999 do vocab[i] = "w" .. i end
  local words = {}
  local nums = {}
  local seed = 42
  for i = 0, n - 1 do
    seed = seed * 16807 % 2147483647
    local w = vocab[seed % 1000]
    words[w] = (words[w] or 0) + 1
    local k = seed % 5003
    nums[k] = (nums[k] or 0) + 1
  end
  local nwords, nnums = 0, 0
  for _ in pairs(words) do nwords = nwords + 1 end
  for _ in pairs(nums) do nnums = nnums + 1 end
  print(string.format("%d %d", nwords, nnums))
  print(string.format("%d %d %d", words["w0"], words["w1"], words["w999"]))
  print(string.format("%d %d %d", nums[0], nums[1], nums[5002]))
  local cs = 0
  for k, c in pairs(nums) do cs = (cs + k * c) % 1000000007 end
  local maxc = 0
  for w, c in pairs(words) do
    if c > maxc then maxc = c end
  end
  print(string.format("%d %d", cs, maxc))
  for k = 0, 5002 do
    local c = nums[k]
    if c ~= nil and c % 2 == 1 then nums[k] = nil end
  end
  local left = 0
  for _ in pairs(nums) do left = left + 1 end
  print(string.format("%d", left))
end
main()
