-- binary_trees: allocation-heavy construction and traversal of binary trees.
local function bottom_up_tree(depth)
  if depth > 0 then
    return { left = bottom_up_tree(depth - 1), right = bottom_up_tree(depth - 1) }
  end
  return { left = nil, right = nil }
end

local function item_check(tree)
  if tree.left == nil then
    return 1
  end
  return 1 + item_check(tree.left) + item_check(tree.right)
end

local function main()
  local n = 15
  local min_depth = 4
  local max_depth = n
  if min_depth + 2 > max_depth then max_depth = min_depth + 2 end

  local stretch_depth = max_depth + 1
  local stretch = bottom_up_tree(stretch_depth)
  print(string.format("stretch tree of depth %d\t check: %d", stretch_depth, item_check(stretch)))
  stretch = nil

  local long_lived = bottom_up_tree(max_depth)

  local d = min_depth
  while d <= max_depth do
    local iters = 1
    for i = 1, max_depth - d + min_depth do iters = iters * 2 end
    local check = 0
    for i = 1, iters do
      check = check + item_check(bottom_up_tree(d))
    end
    print(string.format("%d\t trees of depth %d\t check: %d", iters, d, check))
    d = d + 2
  end
  print(string.format("long lived tree of depth %d\t check: %d", max_depth, item_check(long_lived)))
end
main()
